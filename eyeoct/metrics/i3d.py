"""Inflated Inception-v1 (I3D, RGB stream) from Carreira & Zisserman 2017, 400 Kinetics logits.

Written from the paper's architecture figure: Inception-v1 with every filter inflated to 3-D,
TensorFlow 'SAME' padding, BatchNorm(eps=1e-3) + ReLU after every convolution except the logits.
Module names (Conv3d_1a_7x7, Mixed_3b.b1b.conv3d, ..., logits.conv3d) follow the TF scope names so
that state dicts of other PyTorch ports using the same names load unchanged.

Input: [B, 3, T, H, W] in [-1, 1], T >= 9 (the temporal strides reduce 8 frames to one position,
too few for the final 2x7x7 average pool), H = W = 224 as used for FVD.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIN_FRAMES = 9
NUM_CLASSES = 400

# (name, in_channels, [1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool proj]) of the Inception blocks.
_MIXED = {
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]),
    "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (480, [192, 96, 208, 16, 48, 64]),
    "Mixed_4c": (512, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (512, [128, 128, 256, 24, 64, 64]),
    "Mixed_4e": (512, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (528, [256, 160, 320, 32, 128, 128]),
    "Mixed_5b": (832, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (832, [384, 192, 384, 48, 128, 128]),
}


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (front, back) for one dimension: output = ceil(size / stride)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    pads = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))):  # F.pad wants W, H, T order
        pads.extend(_same_padding(size, k, s))
    return F.pad(x, pads)


class Unit3D(nn.Module):
    """Conv3d with SAME padding, then BatchNorm + ReLU (or a plain biased conv for the logits)."""

    def __init__(self, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1),
                 batch_norm_relu: bool = True):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=not batch_norm_relu)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm_relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        return F.relu(self.bn(x)) if self.bn is not None else x


class MaxPool3dSame(nn.Module):
    """Max pooling with SAME padding. Inputs are post-ReLU (>= 0), so zero padding acts as -inf."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionBlock3D(nn.Module):
    """Four branches concatenated: 1x1 | 1x1->3x3 | 1x1->3x3 | 3x3 max pool->1x1."""

    def __init__(self, in_channels: int, widths: list[int]):
        super().__init__()
        self.b0 = Unit3D(in_channels, widths[0])
        self.b1a = Unit3D(in_channels, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, widths[5])
        self.out_channels = widths[0] + widths[2] + widths[4] + widths[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3D(nn.Module):
    """I3D RGB network; forward returns the 400 Kinetics logits (before softmax), [B, 400]."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionBlock3D(*_MIXED["Mixed_3b"])
        self.Mixed_3c = InceptionBlock3D(*_MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            setattr(self, name, InceptionBlock3D(*_MIXED[name]))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionBlock3D(*_MIXED["Mixed_5b"])
        self.Mixed_5c = InceptionBlock3D(*_MIXED["Mixed_5c"])
        self.logits = Unit3D(1024, num_classes, batch_norm_relu=False)
        self._order = ["Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
                       "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d",
                       "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c"]

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"I3D expects [B, 3, T, H, W], got {tuple(video.shape)}")
        if video.shape[2] < MIN_FRAMES:
            raise ValueError(f"I3D needs at least {MIN_FRAMES} frames, got {video.shape[2]} "
                             f"(expand short clips first, e.g. eyeoct.metrics.fvd.expand_frames)")
        x = video
        for name in self._order:
            x = getattr(self, name)(x)
        if x.shape[2] < 2 or x.shape[3] < 7 or x.shape[4] < 7:
            raise ValueError(f"I3D input {tuple(video.shape[2:])} (T,H,W) is too small for the 2x7x7 "
                             f"average pool (feature map {tuple(x.shape[2:])}); use 224x224 frames")
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)
        # Dropout (inactive at evaluation) precedes the logits in the paper's network.
        return self.logits(x).mean(dim=(2, 3, 4))
