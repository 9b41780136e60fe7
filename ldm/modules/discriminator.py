"""PatchGAN discriminator (pix2pix, Isola et al. 2017) and the hinge losses used to train it.

GroupNorm replaces pix2pix's BatchNorm so that statistics do not depend on the per-device batch
(small batches, DDP without SyncBatchNorm).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ldm.modules.attention import group_norm


class PatchDiscriminator(nn.Module):
    """Conv4x4 stack giving one real/fake logit per overlapping patch: [B, C, H, W] -> [B, 1, h, w]."""

    def __init__(self, in_channels: int = 6, channels: int = 64, num_layers: int = 3, num_groups: int = 32):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"PatchDiscriminator: num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for n in range(1, num_layers + 1):
            stride = 2 if n < num_layers else 1
            next_width = channels * min(2**n, 8)
            layers += [
                nn.Conv2d(width, next_width, 4, stride=stride, padding=1, bias=False),
                group_norm(next_width, min(num_groups, next_width)),
                nn.LeakyReLU(0.2),
            ]
            width = next_width
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self._init_weights()

    def _init_weights(self) -> None:
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, 0.0, 0.02)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
            elif isinstance(layer, nn.GroupNorm):
                nn.init.normal_(layer.weight, 1.0, 0.02)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (E[relu(1 - D(real))] + E[relu(1 + D(fake))]), reduced in float32."""
    return 0.5 * (F.relu(1.0 - logits_real.float()).mean() + F.relu(1.0 + logits_fake.float()).mean())


def hinge_generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """-E[D(fake)] in float32: the generator pushes the discriminator's logits on its outputs up."""
    return -logits_fake.float().mean()
