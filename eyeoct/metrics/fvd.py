"""FVD of OCT volumes: the six B-scans of an eye are the frames of a clip.

Protocol (DESIGN.md): slices expanded to 16 frames by nearest index floor(i*S/16) (real and
generated alike), repeated to 3 channels, resized to 224x224 (bilinear, no antialias, as the
common StyleGAN-V FVD preprocessing), scaled to [-1,1], then the 400 Kinetics logits of I3D,
and the Frechet distance of the two feature sets (float64, n-1 covariance).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from eyeoct.metrics.frechet import frechet_distance_from_features
from eyeoct.metrics.i3d import MIN_FRAMES, InceptionI3D
from eyeoct.metrics.weights import I3D_WEIGHTS, load_network, resolve_weights, sha256_file

logger = logging.getLogger(__name__)

FVD_FRAMES = 16
FVD_SIZE = 224


def expand_frames(volumes: torch.Tensor, num_frames: int = FVD_FRAMES) -> torch.Tensor:
    """Repeat slices along dim 1 to num_frames by nearest index floor(i*S/num_frames): [B,S,H,W] -> [B,T,H,W]."""
    num_slices = volumes.shape[1]
    index = torch.div(torch.arange(num_frames) * num_slices, num_frames, rounding_mode="floor")
    return volumes[:, index.to(volumes.device)]


def volumes_to_clips(volumes, num_frames: int = FVD_FRAMES, size: int = FVD_SIZE) -> torch.Tensor:
    """uint8 volumes [B,S,H,W] (values 0..255) -> I3D clips [B,3,T,size,size] float32 in [-1,1]."""
    volumes = torch.as_tensor(np.asarray(volumes)) if not isinstance(volumes, torch.Tensor) else volumes
    if volumes.dim() != 4:
        raise ValueError(f"FVD expects volumes [B, slices, H, W], got shape {tuple(volumes.shape)}")
    if volumes.dtype != torch.uint8:
        raise ValueError(f"FVD expects uint8 volumes (0..255), got {volumes.dtype}")
    frames = expand_frames(volumes, num_frames).float() / 255.0
    b, t, h, w = frames.shape
    frames = F.interpolate(frames.reshape(b * t, 1, h, w), size=(size, size), mode="bilinear",
                           align_corners=False, antialias=False)
    clips = frames.reshape(b, t, size, size).unsqueeze(1).expand(b, 3, t, size, size)
    return clips * 2.0 - 1.0


class I3DFeatures:
    """Kinetics-400 I3D logits from local weights: StyleGAN-V TorchScript or an InceptionI3D state dict.

    `weights` may be None to use the EYEOCT_I3D_WEIGHTS environment variable. Attributes `path`
    and `sha256` identify the file; every FVD is reported with them.
    """

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu", batch_size: int = 4):
        self.path = resolve_weights(weights, I3D_WEIGHTS)
        self.sha256 = sha256_file(self.path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.net, self.torchscript = load_network(self.path, InceptionI3D, self.device)
        logger.info("I3D weights %s (%s, sha256 %s)", self.path,
                    "TorchScript" if self.torchscript else "state dict", self.sha256)

    @torch.no_grad()
    def clip_features(self, clips: torch.Tensor) -> np.ndarray:
        """Logits [B,400] (float64) of clips [B,3,T,224,224] in [-1,1]."""
        if clips.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {clips.shape[2]}")
        clips = clips.to(self.device)
        if self.torchscript:
            # StyleGAN-V's detector: input already in [-1,1] and 224x224; 400-d pre-softmax output.
            out = self.net(clips, rescale=False, resize=False, return_features=True)
        else:
            out = self.net(clips)
        return out.double().cpu().numpy()

    def volume_features(self, volumes: Iterable) -> np.ndarray:
        """Features [N,400] of an iterable of uint8 volumes [S,H,W], batched."""
        feats, batch = [], []
        for volume in volumes:
            batch.append(torch.as_tensor(np.asarray(volume)))
            if len(batch) == self.batch_size:
                feats.append(self.clip_features(volumes_to_clips(torch.stack(batch))))
                batch = []
        if batch:
            feats.append(self.clip_features(volumes_to_clips(torch.stack(batch))))
        if not feats:
            raise ValueError("FVD: no volumes given")
        return np.concatenate(feats)


def fvd_from_features(real_features: np.ndarray, fake_features: np.ndarray, sha256: str) -> dict:
    """FVD with its sample sizes and the weights' SHA-256 (never report the number alone)."""
    return {"fvd": frechet_distance_from_features(real_features, fake_features),
            "n_real": int(len(real_features)), "n_fake": int(len(fake_features)),
            "frames": FVD_FRAMES, "weights_sha256": sha256}


def compute_fvd(real_volumes: Iterable, fake_volumes: Iterable, extractor: I3DFeatures) -> dict:
    """FVD between two collections of uint8 volumes [S,H,W] (each N >= 2)."""
    return fvd_from_features(extractor.volume_features(real_volumes),
                             extractor.volume_features(fake_volumes), extractor.sha256)
