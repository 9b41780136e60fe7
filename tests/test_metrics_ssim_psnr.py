"""SSIM and PSNR against scikit-image on uint8 and float inputs of odd sizes."""
import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from eyeoct.metrics import psnr_per_image, psnr_per_volume, ssim_per_image


def _pair_uint8(rng, shape):
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    noise = rng.integers(-40, 41, size=shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("shape", [(2, 6, 33, 47), (1, 3, 7, 9), (29, 31)])
def test_ssim_uint8_matches_skimage(shape):
    rng = np.random.default_rng(0)
    pred, target = _pair_uint8(rng, shape)
    ours = ssim_per_image(torch.from_numpy(pred), torch.from_numpy(target), data_range=255)
    assert ours.shape == shape[:-2] and ours.dtype == torch.float64
    flat_p, flat_t = pred.reshape(-1, *shape[-2:]), target.reshape(-1, *shape[-2:])
    ref = np.array([structural_similarity(t, p, data_range=255) for p, t in zip(flat_p, flat_t)])
    np.testing.assert_allclose(ours.numpy().reshape(-1), ref, rtol=0, atol=1e-6)


def test_ssim_float_matches_skimage_and_float32_is_close():
    rng = np.random.default_rng(1)
    target = rng.random((4, 41, 23))
    pred = np.clip(target + 0.1 * rng.standard_normal(target.shape), 0, 1)
    ref = np.array([structural_similarity(t, p, data_range=1.0) for p, t in zip(pred, target)])
    ours = ssim_per_image(pred, target, data_range=1.0)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-6)
    # SSIM is invariant to scaling data and data_range together (not to an offset: luminance term).
    ours_scaled = ssim_per_image(torch.from_numpy(pred * 2), torch.from_numpy(target * 2), data_range=2.0)
    np.testing.assert_allclose(ours_scaled.numpy(), ref, rtol=0, atol=1e-6)
    ours32 = ssim_per_image(torch.from_numpy(pred).float(), torch.from_numpy(target).float(),
                            data_range=1.0, dtype=torch.float32)
    assert ours32.dtype == torch.float32
    np.testing.assert_allclose(ours32.numpy(), ref, rtol=0, atol=1e-4)


def test_ssim_identical_is_one_and_errors_are_clear():
    x = torch.rand(2, 6, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim_per_image(x, x, data_range=1.0), torch.ones(2, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim_per_image(torch.zeros(6, 5, 30), torch.zeros(6, 5, 30), data_range=1.0)
    with pytest.raises(ValueError, match="data_range"):
        ssim_per_image(x, x, data_range=None)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim_per_image(x, x[..., :15], data_range=1.0)


def test_psnr_matches_skimage_per_volume_and_per_image():
    rng = np.random.default_rng(2)
    pred, target = _pair_uint8(rng, (3, 6, 17, 21))
    vol = psnr_per_volume(pred, target, data_range=255)
    ref_vol = [peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(pred, target)]
    np.testing.assert_allclose(vol.numpy(), ref_vol, rtol=0, atol=1e-6)
    img = psnr_per_image(pred, target, data_range=255)
    ref_img = [[peak_signal_noise_ratio(t, p, data_range=255) for p, t in zip(pv, tv)]
               for pv, tv in zip(pred, target)]
    assert img.shape == (3, 6)
    np.testing.assert_allclose(img.numpy(), ref_img, rtol=0, atol=1e-6)
    # float input
    tf = rng.random((2, 6, 9, 11))
    pf = tf + 0.05
    np.testing.assert_allclose(psnr_per_volume(pf, tf, data_range=1.0).numpy(),
                               [peak_signal_noise_ratio(t, p, data_range=1.0) for p, t in zip(pf, tf)],
                               rtol=0, atol=1e-6)


def test_psnr_identical_is_inf_and_constant_offset_known():
    x = torch.randint(0, 200, (2, 6, 8, 8), generator=torch.Generator().manual_seed(3)).to(torch.uint8)
    assert torch.isinf(psnr_per_volume(x, x, data_range=255)).all()
    # offset of 5 grey levels everywhere: MSE 25 -> PSNR 10*log10(255^2/25)
    expected = 10 * np.log10(255.0**2 / 25.0)
    np.testing.assert_allclose(psnr_per_volume(x + 5, x, data_range=255).numpy(), [expected] * 2, atol=1e-9)
