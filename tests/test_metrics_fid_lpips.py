"""FID/KID (Inception-v3) and LPIPS with weights saved to tmp; missing-weights errors."""
import numpy as np
import pytest
import torch
import torchvision

from eyeoct.metrics.inception import InceptionFeatures, build_inception_v3, fid_kid_from_features, kernel_inception_distance
from eyeoct.metrics.lpips import LPIPS


def _brute_force_mmd(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_brute_force_unbiased_mmd():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((6, 4)), rng.standard_normal((6, 4)) + 0.5
    mean, std = kernel_inception_distance(a, b, num_subsets=3, subset_size=6)
    # subsets of all 6 samples are permutations: every subset gives the same value
    assert mean == pytest.approx(_brute_force_mmd(a, b), rel=1e-10) and std == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="KID needs"):
        kernel_inception_distance(a[:1], b)


def test_inception_state_dict_features_and_fid(tmp_path):
    torch.manual_seed(0)
    net = build_inception_v3()
    path = tmp_path / "inception_v3_google-0cc3c7bd.pth"
    torch.save(net.state_dict(), path)
    extractor = InceptionFeatures(path, batch_size=4)
    rng = np.random.default_rng(0)
    vols = [rng.integers(0, 256, (2, 40, 48), dtype=np.uint8)]  # two B-scans
    feats = extractor.volume_features(vols)
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()
    with torch.no_grad():
        x = torch.nn.functional.interpolate(torch.from_numpy(vols[0]).float()[:, None] / 255, size=(299, 299),
                                            mode="bilinear", align_corners=False)
        net.fc = torch.nn.Identity()
        expected = net.eval()((x * 2 - 1).expand(-1, 3, -1, -1)).double().numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-5)
    result = fid_kid_from_features(feats, feats, extractor.sha256)
    assert result["fid"] == pytest.approx(0.0, abs=1e-6) and result["n_real"] == 2
    assert len(result["weights_sha256"]) == 64


def test_inception_missing_weights_error(monkeypatch):
    monkeypatch.delenv("EYEOCT_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(FileNotFoundError, match="inception_v3_google-0cc3c7bd.pth.*torchvision"):
        InceptionFeatures(None)


def _lpips_files(tmp_path, lin_scale=1.0):
    torch.manual_seed(0)
    alex = torchvision.models.alexnet(weights=None)
    backbone = tmp_path / "alexnet.pth"
    torch.save(alex.state_dict(), backbone)
    channels = [64, 192, 384, 256, 256]
    linear = tmp_path / "alex.pth"
    torch.save({f"lin{i}.model.1.weight": torch.full((1, c, 1, 1), lin_scale * (i == 0)) for i, c in enumerate(channels)},
               linear)
    return alex, backbone, linear


def test_lpips_first_stage_hand_computed(tmp_path):
    alex, backbone, linear = _lpips_files(tmp_path)
    lpips = LPIPS(backbone, linear, net="alex")
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    with torch.no_grad():
        fx, fy = (torch.relu(alex.features[0]((v - shift) / scale)) for v in (x, y))
    unit = lambda f: f / (f.norm(dim=1, keepdim=True) + 1e-10)  # noqa: E731
    expected = (unit(fx) - unit(fy)).square().sum(dim=1).mean(dim=(1, 2))  # only lin0 is non-zero (ones)
    torch.testing.assert_close(lpips(x, y), expected, rtol=1e-5, atol=1e-6)
    assert lpips(x, x).abs().max() < 1e-6
    vol = np.random.default_rng(0).integers(0, 256, (1, 6, 32, 32), dtype=np.uint8)
    assert lpips.volume_distance(vol, vol).shape == (1,)


def test_lpips_gives_gradients_as_a_loss_and_none_as_a_metric(tmp_path):
    _, backbone, linear = _lpips_files(tmp_path)
    lpips = LPIPS(backbone, linear, net="alex")
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(2, 32, 32, generator=g) * 2 - 1).requires_grad_()
    y = torch.rand(2, 32, 32, generator=g) * 2 - 1
    lpips(x, y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    vol = np.random.default_rng(1).integers(0, 256, (1, 6, 32, 32), dtype=np.uint8)
    assert not lpips.volume_distance(vol, vol[:, ::-1].copy()).requires_grad


def test_lpips_bad_or_missing_weights(tmp_path, monkeypatch):
    _, backbone, _ = _lpips_files(tmp_path)
    bad = tmp_path / "bad.pth"
    torch.save({"lin0.model.1.weight": torch.ones(1, 3, 1, 1)}, bad)
    with pytest.raises(ValueError, match="lin0.model.1.weight"):
        LPIPS(backbone, bad)
    monkeypatch.delenv("EYEOCT_LPIPS_LINEAR", raising=False)
    with pytest.raises(FileNotFoundError, match="alex.pth.*PerceptualSimilarity"):
        LPIPS(backbone, None)


def _released_lpips_linear():
    """The LPIPS release's alex.pth as shipped inside torchmetrics, if that package is installed."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("torchmetrics")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "functional" / "image" / "lpips_models" / "alex.pth"
    return path if path.is_file() else None


@pytest.mark.skipif(_released_lpips_linear() is None, reason="no released LPIPS alex.pth available locally")
def test_lpips_loads_released_linear_weights(tmp_path):
    _, backbone, _ = _lpips_files(tmp_path)
    lpips = LPIPS(backbone, _released_lpips_linear(), net="alex")
    assert all((lin.weight >= 0).all() for lin in lpips.lins)  # the release's weights are non-negative
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1, torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    assert lpips(x, y).item() > 0 and lpips(x, x).item() == pytest.approx(0.0, abs=1e-6)
