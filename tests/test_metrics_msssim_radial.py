"""MS-SSIM and radial consistency with hand-checkable values."""
import numpy as np
import pytest
import torch

from eyeoct.metrics import ms_ssim_per_image, radial_inconsistency
from eyeoct.metrics.msssim import MS_SSIM_WEIGHTS


def test_ms_ssim_identical_is_one_and_small_images_error():
    x = torch.rand(2, 3, 112, 120, generator=torch.Generator().manual_seed(0))
    out = ms_ssim_per_image(x, x, data_range=1.0)
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, torch.ones(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 112x112"):
        ms_ssim_per_image(x[..., :111, :], x[..., :111, :], data_range=1.0)


def _reference_ms_ssim(x, y, data_range):
    """Independent numpy/scipy MS-SSIM with the same window and pooling rules."""
    from scipy.ndimage import uniform_filter

    c1, c2, cov_norm = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2, 49 / 48
    score = 1.0
    for scale, weight in enumerate(MS_SSIM_WEIGHTS):
        ux, uy = uniform_filter(x, 7), uniform_filter(y, 7)
        vx = cov_norm * (uniform_filter(x * x, 7) - ux * ux)
        vy = cov_norm * (uniform_filter(y * y, 7) - uy * uy)
        vxy = cov_norm * (uniform_filter(x * y, 7) - ux * uy)
        cs = ((2 * vxy + c2) / (vx + vy + c2))[3:-3, 3:-3]
        lum = ((2 * ux * uy + c1) / (ux**2 + uy**2 + c1))[3:-3, 3:-3]
        term = (lum * cs).mean() if scale == 4 else cs.mean()
        score *= max(term, 0.0) ** weight
        h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
        y = y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return score


def test_ms_ssim_matches_reference_pyramid():
    rng = np.random.default_rng(1)
    y = rng.random((2, 131, 117))
    x = np.clip(y + 0.3 * rng.standard_normal(y.shape), 0, 1)
    ours = ms_ssim_per_image(x, y, data_range=1.0).numpy()
    ref = [_reference_ms_ssim(a, b, 1.0) for a, b in zip(x, y)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
    assert 0 < ours.min() < ours.max() < 1


def test_radial_inconsistency_known_values():
    vol = np.zeros((6, 10, 9), dtype=np.uint8)
    assert radial_inconsistency(vol[None]).tolist() == [0.0]
    # slice 0's middle 3 columns (3,4,5) at 255, others 0: profile 1 vs mean 1/6 at every depth
    vol[0, :, 3:6] = 255
    expected = (5 / 6 + 5 * (1 / 6)) / 6
    assert radial_inconsistency(vol).item() == pytest.approx(expected)
    # columns outside the band do not matter
    vol[1:, :, 0] = 255
    assert radial_inconsistency(vol).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="band"):
        radial_inconsistency(vol, band=10)
