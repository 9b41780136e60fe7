"""FID and KID of B-scans from Inception-v3 pool features (2048-d), local weights only.

Weights: torchvision's ImageNet Inception-v3 state dict (architecture from torchvision with
weights=None) or StyleGAN2-ADA/StyleGAN-V's TorchScript 'inception-2015-12-05.pt'.
Each B-scan is one image: repeated to 3 channels; for the state dict, resized to 299x299
(bilinear, no antialias) and scaled to [-1,1] (the input torchvision's weights expect with
transform_input=False); the TorchScript takes uint8 [B,3,H,W] and resizes itself.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from eyeoct.metrics.frechet import frechet_distance_from_features
from eyeoct.metrics.weights import INCEPTION_WEIGHTS, load_network, resolve_weights, sha256_file

logger = logging.getLogger(__name__)

INCEPTION_SIZE = 299


def build_inception_v3() -> torch.nn.Module:
    """torchvision Inception-v3 without weights (aux head kept so released state dicts fit)."""
    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)


class InceptionFeatures:
    """2048-d Inception-v3 pool features of grayscale uint8 images; `path`/`sha256` identify the weights."""

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu", batch_size: int = 16):
        self.path = resolve_weights(weights, INCEPTION_WEIGHTS)
        self.sha256 = sha256_file(self.path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.net, self.torchscript = load_network(self.path, build_inception_v3, self.device)
        if not self.torchscript:
            self.net.fc = torch.nn.Identity()  # pool features, not class logits
        logger.info("Inception weights %s (sha256 %s)", self.path, self.sha256)

    @torch.no_grad()
    def image_features(self, images) -> np.ndarray:
        """Features [N,2048] (float64) of uint8 images [N,H,W]."""
        images = torch.as_tensor(np.asarray(images))
        if images.dim() != 3 or images.dtype != torch.uint8:
            raise ValueError(f"Inception features expect uint8 images [N,H,W], got {images.dtype} {tuple(images.shape)}")
        rgb = images.to(self.device).unsqueeze(1).expand(-1, 3, -1, -1)
        if self.torchscript:
            out = self.net(rgb.contiguous(), return_features=True)
        else:
            x = F.interpolate(rgb.float() / 255.0, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear",
                              align_corners=False, antialias=False)
            out = self.net(x * 2.0 - 1.0)
        return out.double().cpu().numpy()

    def volume_features(self, volumes: Iterable) -> np.ndarray:
        """Features of every B-scan of an iterable of uint8 volumes [S,H,W] -> [N*S, 2048]."""
        feats, pending = [], []
        for volume in volumes:
            pending.extend(np.asarray(volume))
            while len(pending) >= self.batch_size:
                feats.append(self.image_features(np.stack(pending[:self.batch_size])))
                pending = pending[self.batch_size:]
        if pending:
            feats.append(self.image_features(np.stack(pending)))
        if not feats:
            raise ValueError("FID/KID: no images given")
        return np.concatenate(feats)


def kernel_inception_distance(features_a, features_b, num_subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel (x.y/d + 1)^3, mean and std over subsets.

    Subsets of m = min(n_a, n_b, subset_size) samples are drawn without replacement (seeded).
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(len(a), len(b), subset_size)
    if m < 2 or a.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"KID needs two feature sets [N>=2, D] of equal D, got {a.shape} and {b.shape}")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(num_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off_diag = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(off_diag - 2 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))


def fid_kid_from_features(real_features: np.ndarray, fake_features: np.ndarray, sha256: str) -> dict:
    """FID and KID with sample sizes (B-scans) and the weights' SHA-256."""
    kid_mean, kid_std = kernel_inception_distance(real_features, fake_features)
    return {"fid": frechet_distance_from_features(real_features, fake_features), "kid": kid_mean,
            "kid_std": kid_std, "n_real": int(len(real_features)), "n_fake": int(len(fake_features)),
            "weights_sha256": sha256}
