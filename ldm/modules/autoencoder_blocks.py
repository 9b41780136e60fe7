"""Convolutional encoder and decoder of the KL autoencoder (ResNet blocks, mid-block self-attention).

The encoder maps [B, in_channels, H, W] to [B, 2*z_channels, H/f, W/f] (mean and log-variance);
the decoder maps [B, z_channels, H/f, W/f] back to [B, out_ch, H, W], with f = 2**(len(ch_mult)-1).
With ``use_checkpoint`` both keep only the inputs of their ResNet blocks, mid block, upsampling steps and
output head while training, and recompute the rest in the backward pass (same values, less memory).
"""
from __future__ import annotations

from dataclasses import dataclass

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

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, num_groups: int = 32):
        super().__init__()
        self.norm1 = group_norm(in_channels, num_groups, eps=1e-6)
        self.conv1 = conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = group_norm(out_channels, num_groups, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all spatial positions, with a zero-initialised output projection."""

    def __init__(self, channels: int, num_groups: int = 32):
        super().__init__()
        self.norm = group_norm(channels, num_groups, eps=1e-6)
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

    def __init__(self, channels: int, dropout: float, num_groups: int):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, dropout, num_groups)
        self.attn = AttnBlock(channels, num_groups)
        self.block_2 = ResnetBlock(channels, channels, dropout, num_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn(self.block_1(x)))


@dataclass(frozen=True)
class AutoencoderConfig:
    """Validated architecture of the KL autoencoder (the ``ddconfig`` block).

    ch: width of the first level; level i has ``ch * ch_mult[i]`` channels.
    ch_mult: one multiplier per level; every level but the last halves H and W, so f = 2**(len(ch_mult)-1).
    num_res_blocks: ResNet blocks per encoder level (the decoder has one more per level).
    in_channels / out_ch: image channels encoded / decoded; z_channels: latent channels.
    dropout: in the ResNet blocks. num_groups: GroupNorm groups (every width must be divisible by it).
    use_checkpoint: recompute the encoder's and decoder's activations in the backward pass.
    """

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    in_channels: int = 6
    out_ch: int = 6
    z_channels: int = 4
    dropout: float = 0.0
    num_groups: int = 32
    use_checkpoint: bool = False

    def __post_init__(self):
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        if self.ch <= 0 or self.num_res_blocks < 0 or not self.ch_mult or any(m <= 0 for m in self.ch_mult):
            raise ValueError(
                f"invalid autoencoder architecture: ch={self.ch}, ch_mult={list(self.ch_mult)}, "
                f"num_res_blocks={self.num_res_blocks} (expected ch > 0, a non-empty ch_mult of positive ints, "
                "num_res_blocks >= 0)"
            )

    @property
    def downsampling_factor(self) -> int:
        """Spatial factor f between image and latent."""
        return 2 ** (len(self.ch_mult) - 1)


class Encoder(nn.Module):
    """Image [B, in_channels, H, W] -> moments [B, 2*z_channels, H/f, W/f]."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        ch, ch_mult, num_res_blocks = config.ch, config.ch_mult, config.num_res_blocks
        dropout, num_groups = config.dropout, config.num_groups
        self.use_checkpoint = config.use_checkpoint
        self.conv_in = conv2d(config.in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for level, mult in enumerate(ch_mult):
            stage = nn.Module()
            stage.blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                stage.blocks.append(ResnetBlock(block_in, ch * mult, dropout, num_groups))
                block_in = ch * mult
            stage.downsample = Downsample(block_in) if level < len(ch_mult) - 1 else nn.Identity()
            self.down.append(stage)
        self.mid = MidBlock(block_in, dropout, num_groups)
        self.norm_out = group_norm(block_in, num_groups, eps=1e-6)
        self.conv_out = conv2d(block_in, 2 * config.z_channels, 3, padding=1)

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

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        ch, ch_mult, num_res_blocks = config.ch, config.ch_mult, config.num_res_blocks
        dropout, num_groups = config.dropout, config.num_groups
        self.use_checkpoint = config.use_checkpoint
        block_in = ch * ch_mult[-1]
        self.conv_in = conv2d(config.z_channels, block_in, 3, padding=1)
        self.mid = MidBlock(block_in, dropout, num_groups)
        self.up = nn.ModuleList()  # lowest resolution first
        for level in reversed(range(len(ch_mult))):
            stage = nn.Module()
            stage.blocks = nn.ModuleList()
            for _ in range(num_res_blocks + 1):
                stage.blocks.append(ResnetBlock(block_in, ch * ch_mult[level], dropout, num_groups))
                block_in = ch * ch_mult[level]
            stage.upsample = Upsample(block_in) if level > 0 else nn.Identity()
            self.up.append(stage)
        self.norm_out = group_norm(block_in, num_groups, eps=1e-6)
        self.conv_out = conv2d(block_in, config.out_ch, 3, padding=1)

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
