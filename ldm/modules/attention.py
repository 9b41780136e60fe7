"""Attention layers of the denoising UNet: SDPA attention, GEGLU feed-forward, transformer blocks.

Module and parameter names mirror Stable Diffusion's (``to_q``, ``to_out.0``, ``ff.net.0.proj``,
``transformer_blocks.K``, ``proj_in``/``proj_out``) so an SD state dict maps onto them by name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ldm.modules.checkpointing import checkpointed


def zero_module(module: nn.Module) -> nn.Module:
    """Set every parameter of ``module`` to zero (used for residual-branch outputs) and return it."""
    for param in module.parameters():
        nn.init.zeros_(param)
    return module


def group_norm(channels: int, num_groups: int, eps: float = 1e-5) -> nn.GroupNorm:
    """GroupNorm with a clear error when ``channels`` is not divisible by ``num_groups``."""
    if channels % num_groups:
        raise ValueError(f"GroupNorm: {channels} channels are not divisible by num_groups={num_groups}")
    return nn.GroupNorm(num_groups, channels, eps=eps, affine=True)


def resolve_heads(channels: int, num_heads: int = -1, num_head_channels: int = -1) -> tuple[int, int]:
    """Return ``(heads, head_dim)`` from exactly one of ``num_heads`` / ``num_head_channels``."""
    if (num_heads > 0) == (num_head_channels > 0):
        raise ValueError(
            f"set exactly one of num_heads ({num_heads}) and num_head_channels ({num_head_channels}) "
            "to a positive value"
        )
    if num_heads > 0:
        if channels % num_heads:
            raise ValueError(f"{channels} channels are not divisible by num_heads={num_heads}")
        return num_heads, channels // num_heads
    if channels % num_head_channels:
        raise ValueError(f"{channels} channels are not divisible by num_head_channels={num_head_channels}")
    return channels // num_head_channels, num_head_channels


class Attention(nn.Module):
    """Multi-head (cross-)attention on ``scaled_dot_product_attention``.

    Queries come from ``x`` [B, N, query_dim]; keys/values from ``context`` [B, M, context_dim]
    (or from ``x`` itself when ``context_dim`` is None: self-attention).
    """

    def __init__(self, query_dim: int, heads: int, dim_head: int, context_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        inner_dim = heads * dim_head
        self.heads = heads
        self.dim_head = dim_head
        self.is_cross = context_dim is not None
        kv_dim = context_dim if context_dim is not None else query_dim
        self.to_q = nn.Linear(query_dim, inner_dim, bias=False)
        self.to_k = nn.Linear(kv_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(kv_dim, inner_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner_dim, query_dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.is_cross:
            if context is None:
                raise ValueError("cross-attention layer needs a context tensor [B, M, context_dim], got None")
            if context.shape[0] != x.shape[0] or context.shape[-1] != self.to_k.in_features:
                raise ValueError(
                    f"context has shape {tuple(context.shape)}; expected [{x.shape[0]}, M, {self.to_k.in_features}]"
                )
        else:
            context = x
        q, k, v = (rearrange(f(inp), "b n (heads d) -> b heads n d", heads=self.heads)
                   for f, inp in ((self.to_q, x), (self.to_k, context), (self.to_v, context)))
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, N, dim_head]
        return self.to_out(rearrange(out, "b heads n d -> b n (heads d)"))


class GEGLU(nn.Module):
    """``proj`` to twice the width, then ``a * gelu(gate)`` (Shazeer, 2020)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.proj(x).chunk(2, dim=-1)
        return a * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward: ``net = [GEGLU(dim, mult*dim), Dropout, Linear(mult*dim, dim)]``."""

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        inner = dim * mult
        self.net = nn.Sequential(GEGLU(dim, inner), nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class OCTTransformerBlock(nn.Module):
    """Pre-norm transformer block: self-attention, cross-attention to the CF tokens, GEGLU MLP.

    ``x = attn1(norm1(x)) + x``; ``x = attn2(norm2(x), context) + x``; ``x = ff(norm3(x)) + x``.
    With ``context_dim=None`` the cross-attention (``attn2``/``norm2``) is left out.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        context_dim: int | None,
        dropout: float = 0.0,
        use_checkpoint: bool = False,
    ):
        super().__init__()
        self.use_checkpoint = use_checkpoint
        self.attn1 = Attention(dim, heads, dim_head, context_dim=None, dropout=dropout)
        self.norm1 = nn.LayerNorm(dim)
        if context_dim is not None:
            self.attn2 = Attention(dim, heads, dim_head, context_dim=context_dim, dropout=dropout)
            self.norm2 = nn.LayerNorm(dim)
        else:
            self.attn2 = None
        self.ff = FeedForward(dim, dropout=dropout)
        self.norm3 = nn.LayerNorm(dim)

    def _forward(self, x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        x = self.attn1(self.norm1(x)) + x
        if self.attn2 is not None:
            x = self.attn2(self.norm2(x), context=context) + x
        elif context is not None:
            raise ValueError("this transformer block was built with context_dim=None but received a context")
        return self.ff(self.norm3(x)) + x

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return checkpointed(self._forward, x, context, enabled=self.use_checkpoint)


class SpatialTransformer(nn.Module):
    """Transformer over the pixels of a feature map [B, C, H, W] with a residual around it.

    GroupNorm, ``proj_in`` (1x1 conv or linear, C -> heads*dim_head), ``depth`` OCTTransformerBlocks,
    ``proj_out`` (inner -> C, zero-initialised so the block starts as the identity).
    """

    def __init__(
        self,
        in_channels: int,
        heads: int,
        dim_head: int,
        depth: int = 1,
        context_dim: int | None = None,
        dropout: float = 0.0,
        use_linear: bool = False,
        use_checkpoint: bool = False,
        num_groups: int = 32,
    ):
        super().__init__()
        inner_dim = heads * dim_head
        self.use_linear = use_linear
        self.norm = group_norm(in_channels, num_groups, eps=1e-6)
        if use_linear:
            self.proj_in = nn.Linear(in_channels, inner_dim)
            self.proj_out = zero_module(nn.Linear(inner_dim, in_channels))
        else:
            self.proj_in = nn.Conv2d(in_channels, inner_dim, kernel_size=1)
            self.proj_out = zero_module(nn.Conv2d(inner_dim, in_channels, kernel_size=1))
        self.transformer_blocks = nn.ModuleList(
            OCTTransformerBlock(inner_dim, heads, dim_head, context_dim, dropout, use_checkpoint) for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C, H, W] -> [B, C, H, W] in the memory format of ``x``.

        The token view [B, H*W, C] and back are free for a channels_last ``x``; for a contiguous one the
        projection into tokens copies once and the way back is a strided view read by the residual add.
        """
        height = x.shape[2]
        h = self.norm(x)
        if not self.use_linear:
            h = self.proj_in(h)
        h = rearrange(h, "b c h w -> b (h w) c")
        if self.use_linear:
            h = self.proj_in(h)
        for block in self.transformer_blocks:
            h = block(h, context=context)
        if self.use_linear:
            h = self.proj_out(h)
        h = rearrange(h, "b (h w) c -> b c h w", h=height)  # a channels_last view of the tokens
        if not self.use_linear:
            h = self.proj_out(h)
        # x first: the sum takes x's memory format, so a contiguous UNet never switches to channels_last
        # (which would make every following convolution reorder its weights)
        return x + h
