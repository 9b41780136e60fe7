"""LPIPS (Zhang et al. 2018) of B-scans from local weights: a torchvision backbone + LPIPS linear layers.

d(x, y) = sum_l mean_hw  w_l . (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|)^2  over five ReLU stages of
AlexNet or VGG16, inputs in [-1,1] shifted/scaled by the LPIPS constants. B-scans are repeated to
three channels. The linear weights are the LPIPS release's 'alex.pth'/'vgg.pth'
(keys lin{l}.model.1.weight, shape [1,C,1,1]); the backbone is torchvision's ImageNet state dict.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

from eyeoct.metrics.weights import LPIPS_BACKBONE_WEIGHTS, LPIPS_LINEAR_WEIGHTS, load_into, resolve_weights, sha256_file
from ldm.util.checkpoints import read_state_dict

# Index (exclusive end) in torchvision's `features` of each ReLU stage, and its channels.
_STAGES = {"alex": ([2, 5, 8, 10, 12], [64, 192, 384, 256, 256]),
           "vgg": ([4, 9, 16, 23, 30], [64, 128, 256, 512, 512])}
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """LPIPS distance per image pair; `sha256` maps 'backbone'/'linear' to the files' SHA-256."""

    def __init__(self, backbone_weights: str | Path | None, linear_weights: str | Path | None, net: str = "alex"):
        super().__init__()
        if net not in _STAGES:
            raise ValueError(f"LPIPS net must be one of {sorted(_STAGES)}, got {net!r}")
        backbone_path = resolve_weights(backbone_weights, LPIPS_BACKBONE_WEIGHTS)
        linear_path = resolve_weights(linear_weights, LPIPS_LINEAR_WEIGHTS)
        model = torchvision.models.alexnet(weights=None) if net == "alex" else torchvision.models.vgg16(weights=None)
        self.features = load_into(model, backbone_path).features.eval()
        self.stage_ends, channels = _STAGES[net]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        self._load_linear(linear_path, channels)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.sha256 = {"backbone": sha256_file(backbone_path), "linear": sha256_file(linear_path)}
        self.requires_grad_(False)

    def _load_linear(self, path: Path, channels: list[int]) -> None:
        state = read_state_dict(path, LPIPS_LINEAR_WEIGHTS.source)
        for index, (lin, c) in enumerate(zip(self.lins, channels)):
            key = f"lin{index}.model.1.weight"
            if key not in state or tuple(state[key].shape) != (1, c, 1, 1):
                found = tuple(state[key].shape) if key in state else "missing"
                raise ValueError(f"{path}: LPIPS linear weights need '{key}' of shape (1, {c}, 1, 1), found {found}")
            lin.weight.data.copy_(state[key])

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, start = [], 0
        x = (x - self.shift) / self.scale
        for end in self.stage_ends:
            x = self.features[start:end](x)
            outs.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
            start = end
        return outs

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Distances [N] of images [N,3,H,W] or [N,H,W] (grayscale repeated) in [-1,1]; differentiable."""
        if pred.dim() == 3:
            pred, target = pred.unsqueeze(1).expand(-1, 3, -1, -1), target.unsqueeze(1).expand(-1, 3, -1, -1)
        total = 0
        for lin, fp, ft in zip(self.lins, self._stages(pred), self._stages(target)):
            total = total + lin((fp - ft).square()).mean(dim=(1, 2, 3))
        return total

    @torch.no_grad()
    def volume_distance(self, pred_uint8, target_uint8) -> torch.Tensor:
        """Mean LPIPS over the slices of each volume: uint8 [B,S,H,W] -> [B]."""
        pred = torch.as_tensor(np.asarray(pred_uint8)).to(self.shift.device)
        target = torch.as_tensor(np.asarray(target_uint8)).to(self.shift.device)
        b, s, h, w = pred.shape
        dist = self(pred.reshape(b * s, h, w).float() / 127.5 - 1, target.reshape(b * s, h, w).float() / 127.5 - 1)
        return dist.reshape(b, s).mean(dim=1)
