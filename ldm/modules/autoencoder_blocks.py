"""Convolutional encoder and decoder of the KL autoencoder (ResNet blocks, mid-block self-attention).

The encoder maps [B, in_channels, H, W] to [B, 2*z_channels, H/f, W/f] (mean and log-variance);
the decoder maps [B, z_channels, H/f, W/f] back to [B, out_ch, H, W], with f = 2**(len(ch_mult)-1).
With ``use_checkpoint`` both keep only the inputs of their ResNet blocks, mid block, upsampling steps and
output head while training, and recompute the rest in the backward pass (same values, less memory).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ldm.modules.attention import group_norm, zero_module
from ldm.modules.checkpointing import checkpointed


def conv2d(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Conv2d:
    """Conv2d with Xavier-uniform weights and zero bias (explicit init instead of PyTorch's default)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs)
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a residual; a 1x1 conv on the skip when channels change.

    The second conv starts at zero, so every block begins as the identity (or the skip projection).
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, norm_groups: int = 32):
        super().__init__()
        self.norm1 = group_norm(in_channels, norm_groups, eps=1e-6)
        self.conv1 = conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, norm_groups, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all spatial positions, with a zero-initialised output projection."""

    def __init__(self, channels: int, norm_groups: int = 32):
        super().__init__()
        self.norm = group_norm(channels, norm_groups, eps=1e-6)
        self.qkv = conv2d(channels, 3 * channels, 1)
        self.proj_out = zero_module(conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(self.norm(x)), "b (qkv c) h w -> qkv b 1 (h w) c", qkv=3)  # heads=1
        out = F.scaled_dot_product_attention(q, k, v)  # [B, 1, H*W, C]
        return x + self.proj_out(rearrange(out, "b 1 (h w) c -> b c h w", h=x.shape[2]))


class Downsample(nn.Module):
    """Stride-2 3x3 conv; the input is padded by one on the right and bottom so H, W halve exactly."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Nearest-neighbour x2 followed by a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock(nn.Module):
    """ResNet block, self-attention, ResNet block at the lowest resolution."""

    def __init__(self, channels: int, dropout: float, norm_groups: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout, norm_groups)
        self.attn = AttnBlock(channels, norm_groups)
        self.block_2 = ResnetBlock(channels, channels, dropout, norm_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn(self.block_1(x)))


def _check_architecture(ch: int, ch_mult: Sequence[int], num_res_blocks: int) -> None:
    if ch <= 0 or num_res_blocks < 0 or not ch_mult or any(m <= 0 for m in ch_mult):
        raise ValueError(
            f"invalid autoencoder architecture: ch={ch}, ch_mult={list(ch_mult)}, num_res_blocks={num_res_blocks} "
            "(expected ch > 0, a non-empty ch_mult of positive ints, num_res_blocks >= 0)"
        )


class Encoder(nn.Module):
    """Image [B, in_channels, H, W] -> moments [B, 2*z_channels, H/f, W/f]."""

    def __init__(self, *, ch: int = 128, ch_mult: Sequence[int] = (1, 2, 4, 4), num_res_blocks: int = 2,
                 in_channels: int = 6, z_channels: int = 4, dropout: float = 0.0, norm_groups: int = 32,
                 use_checkpoint: bool = False):
        super().__init__()
        _check_architecture(ch, ch_mult, num_res_blocks)
        self.use_checkpoint = use_checkpoint
        self.conv_in = conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for level, mult in enumerate(ch_mult):
            stage = nn.Module()
            stage.blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                stage.blocks.append(ResnetBlock(block_in, ch * mult, dropout, norm_groups))
                block_in = ch * mult
            stage.downsample = Downsample(block_in) if level < len(ch_mult) - 1 else nn.Identity()
            self.down.append(stage)
        self.mid = MidBlock(block_in, dropout, norm_groups)
        self.norm_out = group_norm(block_in, norm_groups, eps=1e-6)
        self.conv_out = conv2d(block_in, 2 * z_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            for block in stage.blocks:
                h = checkpointed(block, h, enabled=self.use_checkpoint)
            h = stage.downsample(h)
        h = checkpointed(self.mid, h, enabled=self.use_checkpoint)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Latent [B, z_channels, h, w] -> image [B, out_ch, h*f, w*f]."""

    def __init__(self, *, ch: int = 128, ch_mult: Sequence[int] = (1, 2, 4, 4), num_res_blocks: int = 2,
                 out_ch: int = 6, z_channels: int = 4, dropout: float = 0.0, norm_groups: int = 32,
                 use_checkpoint: bool = False):
        super().__init__()
        _check_architecture(ch, ch_mult, num_res_blocks)
        self.use_checkpoint = use_checkpoint
        block_in = ch * ch_mult[-1]
        self.conv_in = conv2d(z_channels, block_in, 3, padding=1)
        self.mid = MidBlock(block_in, dropout, norm_groups)
        self.up = nn.ModuleList()  # lowest resolution first
        for level in reversed(range(len(ch_mult))):
            stage = nn.Module()
            stage.blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                stage.blocks.append(ResnetBlock(block_in, ch * ch_mult[level], dropout, norm_groups))
                block_in = ch * ch_mult[level]
            stage.upsample = Upsample(block_in) if level > 0 else nn.Identity()
            self.up.append(stage)
        self.norm_out = group_norm(block_in, norm_groups, eps=1e-6)
        self.conv_out = conv2d(block_in, out_ch, 3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the final conv (used by the adaptive GAN weight)."""
        return self.conv_out.weight

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        return self.conv_out(F.silu(self.norm_out(h)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = checkpointed(self.mid, self.conv_in(z), enabled=self.use_checkpoint)
        for stage in self.up:
            for block in stage.blocks:
                h = checkpointed(block, h, enabled=self.use_checkpoint)
            h = checkpointed(stage.upsample, h, enabled=self.use_checkpoint)
        # at full resolution the head's three saved tensors are the largest activations of the model
        return checkpointed(self._head, h, enabled=self.use_checkpoint)
