"""Frechet distance, the I3D network, FVD preprocessing and local-weights loading."""
import hashlib
import os

import numpy as np
import pytest
import scipy.linalg
import torch

from eyeoct.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from eyeoct.metrics.fvd import I3DFeatures, compute_fvd, expand_frames, volumes_to_clips
from eyeoct.metrics.i3d import InceptionI3D
from eyeoct.metrics.weights import is_torchscript, sha256_file


def _random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T + d * np.eye(d)


def test_frechet_identical_gaussians_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(5), _random_spd(rng, 5)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_frechet_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    # ||mu1-mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2 = 5 + (1 + 1 + 0)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(7.0, abs=1e-10)


def test_frechet_matches_symmetric_scipy_form():
    rng = np.random.default_rng(1)
    d = 8
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    root1 = scipy.linalg.sqrtm(s1).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(root1 @ s2 @ root1).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)
    # the direct scipy formula on the non-symmetric product, also for rank-deficient covariances
    direct = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(direct, rel=1e-9)
    # fewer samples than dimensions (the sample-space path) and more (the covariance path)
    for n1, n2 in ((4, 5), (30, 40)):
        a, b = rng.standard_normal((n1, d)), rng.standard_normal((n2, d)) * 2 + 1
        ca, cb = np.cov(a.T), np.cov(b.T)
        direct = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
        assert frechet_distance_from_features(a, b) == pytest.approx(direct, rel=1e-6)


def test_feature_statistics_use_n_minus_1():
    feats = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = feature_statistics(feats)
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, np.cov(feats.T, ddof=1))
    assert sigma[0, 0] == pytest.approx(4.0)  # ((-2)^2 + 0 + 2^2) / (3 - 1)
    with pytest.raises(ValueError, match="N>=2"):
        feature_statistics(feats[:1])
    a = np.random.default_rng(2).standard_normal((50, 3))
    assert frechet_distance_from_features(a, a + 2.0) == pytest.approx(12.0, abs=1e-9)


def test_expand_frames_nearest_index_rule():
    vol = torch.arange(6).reshape(1, 6, 1, 1).expand(1, 6, 2, 2)
    frames = expand_frames(vol, 16)[0, :, 0, 0].tolist()
    assert frames == [i * 6 // 16 for i in range(16)] == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5]


def test_volumes_to_clips_shape_and_range():
    vol = torch.zeros(2, 6, 20, 30, dtype=torch.uint8)
    vol[:, :, :, 15:] = 255
    clips = volumes_to_clips(vol)
    assert clips.shape == (2, 3, 16, 224, 224)
    assert clips.min() == -1.0 and clips.max() == 1.0
    assert torch.equal(clips[:, 0], clips[:, 2])
    with pytest.raises(ValueError, match="uint8"):
        volumes_to_clips(vol.float())


@pytest.mark.parametrize("frames", [9, 16])
def test_i3d_output_shape_random_weights(frames):
    torch.manual_seed(0)
    net = InceptionI3D().eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, frames, 224, 224) * 2 - 1)
    assert out.shape == (1, 400) and torch.isfinite(out).all()


def test_i3d_rejects_fewer_than_9_frames():
    with pytest.raises(ValueError, match="at least 9 frames"):
        InceptionI3D()(torch.zeros(1, 3, 8, 224, 224))


class _DummyDetector(torch.nn.Module):
    """Stands in for StyleGAN-V's i3d_torchscript.pt: same call signature, 400 outputs."""

    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.arange(400, dtype=torch.float32))

    def forward(self, x: torch.Tensor, rescale: bool = True, resize: bool = True,
                return_features: bool = False) -> torch.Tensor:
        if rescale or resize or not return_features:
            raise RuntimeError("called with the wrong flags")
        return x.mean(dim=(1, 2, 3, 4)).unsqueeze(1) * self.scale


def test_torchscript_loader_calls_detector_like_stylegan_v(tmp_path):
    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_DummyDetector()).save(str(path))
    assert is_torchscript(path)
    extractor = I3DFeatures(path, batch_size=2)
    assert extractor.torchscript
    assert extractor.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    vols = [np.full((6, 12, 10), v, dtype=np.uint8) for v in (0, 255, 51)]
    feats = extractor.volume_features(vols)
    # mean of a constant clip is v/255*2-1; output j is that mean times j
    expected = np.outer([-1.0, 1.0, 51 / 255 * 2 - 1], np.arange(400))
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-4)


def test_state_dict_loader_matches_network(tmp_path):
    torch.manual_seed(1)
    net = InceptionI3D().eval()
    path = tmp_path / "i3d_state.pt"
    torch.save(net.state_dict(), path)
    assert not is_torchscript(path)
    extractor = I3DFeatures(path)
    vol = np.random.default_rng(0).integers(0, 256, (1, 6, 16, 16), dtype=np.uint8)
    with torch.no_grad():
        expected = net(volumes_to_clips(torch.from_numpy(vol))).double().numpy()
    np.testing.assert_allclose(extractor.volume_features(vol), expected, rtol=1e-6, atol=1e-6)


def test_missing_weights_error_names_file_and_source(tmp_path, monkeypatch):
    monkeypatch.delenv("EYEOCT_I3D_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="i3d_torchscript.pt.*EYEOCT_I3D_WEIGHTS.*StyleGAN-V"):
        I3DFeatures(None)
    with pytest.raises(FileNotFoundError, match="not found.*nope.pt.*StyleGAN-V"):
        I3DFeatures(tmp_path / "nope.pt")


@pytest.mark.skipif(not os.environ.get("EYEOCT_I3D_WEIGHTS"), reason="EYEOCT_I3D_WEIGHTS not set")
def test_fvd_with_real_weights():
    rng = np.random.default_rng(0)
    extractor = I3DFeatures(None)
    base = rng.integers(0, 256, (4, 6, 64, 96), dtype=np.uint8)
    same = compute_fvd(base, base, extractor)
    assert same["fvd"] == pytest.approx(0.0, abs=1e-3) and same["n_real"] == 4
    dark = (base // 4).astype(np.uint8)
    assert compute_fvd(base, dark, extractor)["fvd"] > 1.0
