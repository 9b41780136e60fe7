"""ControlNet branch: a trainable copy of the UNet encoder fed with the CF image as a spatial hint."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.unet import UNetEncoder, UNetModel


def zero_conv(channels: int) -> nn.Conv2d:
    """1x1 convolution initialised to zero, so a new branch starts as an exact no-op."""
    conv = nn.Conv2d(channels, channels, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def num_downsampling_stages(hint_size: int, latent_size: int) -> int:
    """Stride-2 stages taking a `hint_size` image to about `latent_size` (power-of-two ratio, >= 0)."""
    if hint_size < 1 or latent_size < 1:
        raise ValueError(f"sizes must be positive, got hint_size={hint_size}, latent_size={latent_size}")
    return max(0, round(math.log2(hint_size / latent_size)))


class HintEncoder(nn.Module):
    """Small conv stack mapping the CF image [B, hint_channels, h, w] to UNet features at latent size.

    `num_stages` stride-2 convolutions (see `num_downsampling_stages`) are followed by a resize to the
    exact latent size (CF and OCT latents need not share an aspect ratio) and a zero-initialised conv.
    """

    def __init__(self, hint_channels: int, out_channels: int, num_stages: int,
                 hidden_channels: Sequence[int] = (16, 32, 96, 256)):
        super().__init__()
        if not hidden_channels:
            raise ValueError("hint hidden_channels must list at least one channel count")
        widths = [int(hidden_channels[min(i, len(hidden_channels) - 1)]) for i in range(num_stages + 1)]
        layers: list[nn.Module] = [nn.Conv2d(hint_channels, widths[0], 3, padding=1), nn.SiLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.SiLU(),
                       nn.Conv2d(c_in, c_out, 3, padding=1, stride=2), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv2d(widths[-1], out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, hint: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        h = self.body(hint)
        if tuple(h.shape[-2:]) != tuple(size):
            h = F.interpolate(h, size=tuple(size), mode="bilinear", align_corners=False)
        return self.out(h)


def resolve_control_scales(control_scales: float | Sequence[float], count: int) -> list[float]:
    """One scale per control output: a single float is repeated, a list must have `count` entries."""
    if isinstance(control_scales, (int, float)):
        return [float(control_scales)] * count
    scales = [float(s) for s in control_scales]
    if len(scales) != count:
        raise ValueError(f"control_scales has {len(scales)} entries but this UNet has {count} control outputs "
                         f"({count - 1} skips + middle); give one float or a list of {count}")
    return scales


def _scaled(control: torch.Tensor, scale: float) -> torch.Tensor:
    """``control * scale``, without the extra pass (forward and backward) for the usual scale 1."""
    return control if scale == 1.0 else control * scale


@dataclass(frozen=True)
class ControlNetConfig:
    """The ``controlnet:`` block of a ControlLDM.

    enabled: build the ControlNet branch at all. sd_locked: freeze the UNet encoder (ControlNet training;
    needs ``enabled``). only_mid_control, control_scales, hint_channels, hint_hidden_channels: as in
    `ControlNet`. init_from_unet: start the branch as a copy of the UNet encoder.
    """

    enabled: bool = False
    sd_locked: bool = False
    only_mid_control: bool = False
    control_scales: float | Sequence[float] = 1.0
    hint_channels: int = 3
    hint_hidden_channels: Sequence[int] = (16, 32, 96, 256)
    init_from_unet: bool = True

    def __post_init__(self):
        if self.sd_locked and not self.enabled:
            raise ValueError("controlnet.sd_locked=true freezes the UNet encoder for ControlNet training; "
                             "it needs controlnet.enabled=true")


class ControlNet(nn.Module):
    """ControlNet: `UNetEncoder` + hint encoder + one zero conv per skip and for the middle block.

    `forward` returns the list that `UNetModel.forward(..., control=...)` adds to its skips and middle.
    With `only_mid_control` the skip controls are zeros and their convs are frozen (unused).
    """

    def __init__(self, unet_config: dict, hint_stages: int, hint_channels: int = 3,
                 hint_hidden_channels: Sequence[int] = (16, 32, 96, 256),
                 control_scales: float | Sequence[float] = 1.0, only_mid_control: bool = False):
        super().__init__()
        self.encoder = UNetEncoder(**unet_config)
        channels = list(self.encoder.skip_channels)
        self.hint_encoder = HintEncoder(hint_channels, channels[0], hint_stages, hint_hidden_channels)
        self.zero_convs = nn.ModuleList(zero_conv(c) for c in channels)
        self.control_scales = resolve_control_scales(control_scales, len(channels))
        self.only_mid_control = only_mid_control
        if only_mid_control:
            self.zero_convs[:-1].requires_grad_(False)

    def init_from_unet(self, unet: UNetModel) -> None:
        """Copy the UNet's encoder weights (time embedding, input blocks, middle block)."""
        self.encoder.load_state_dict(unet.encoder.state_dict())

    def encode_hint(self, cf: torch.Tensor, latent_size: Sequence[int]) -> torch.Tensor:
        """Hint features [B, model_channels, *latent_size]; computed once per batch and reused per step."""
        return self.hint_encoder(cf, latent_size)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None,
                hint_features: torch.Tensor, pooled_cond: torch.Tensor | None = None) -> list[torch.Tensor]:
        feats = self.encoder(x, timesteps, context, hint=hint_features, pooled_cond=pooled_cond)
        if self.only_mid_control:
            controls = [torch.zeros_like(f) for f in feats[:-1]]
            return controls + [_scaled(self.zero_convs[-1](feats[-1]), self.control_scales[-1])]
        return [_scaled(conv(f), s) for conv, f, s in zip(self.zero_convs, feats, self.control_scales)]
