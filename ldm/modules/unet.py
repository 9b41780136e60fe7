"""Denoising UNet with transformer blocks, split into an encoder (reusable as a ControlNet branch) and a decoder.

``UNetEncoder`` = time embedding + input blocks + middle block; ``UNetModel`` = an ``encoder`` plus
``output_blocks`` and ``out``. Submodule names follow Stable Diffusion's UNet (``time_embed``,
``input_blocks.N.M``, ``middle_block``, ``output_blocks``, ``out``), with the first three under
``encoder.`` in ``UNetModel``.

Initialisation: PyTorch defaults for convolutions/linears, zeros for the last conv of every ResBlock
residual branch, every ``proj_out`` and the output conv, so a fresh model predicts exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ldm.modules.attention import SpatialTransformer, group_norm, resolve_heads, zero_module
from ldm.modules.unet_blocks import Downsample, ResBlock, TimestepEmbedSequential, Upsample, timestep_embedding
from ldm.util.config import validated


@dataclass(frozen=True)
class UNetConfig:
    """Validated UNet hyper-parameters (the keyword arguments of ``UNetEncoder``/``UNetModel``).

    in_channels / out_channels: latent channels in and predicted (eps or v) channels out.
    model_channels: width of the first level; level i has ``channel_mult[i] * model_channels``.
    channel_mult: one multiplier per resolution level; a level adds a 2x downsampling except the last.
    num_res_blocks: ResBlocks per level in the encoder (the decoder has one more per level).
    attention_resolutions: downsampling factors (1, 2, 4, ...) whose levels get a SpatialTransformer.
    num_head_channels / num_heads: attention head width, or head count; exactly one positive.
    transformer_depth: OCTTransformerBlocks per SpatialTransformer (int, or one per level).
    context_dim: width of the conditioning tokens for cross-attention (None: no cross-attention).
    pooled_cond_dim: width of a pooled condition vector embedded by ``label_emb`` and added to the time
        embedding, so it modulates every ResBlock (SDXL's pooled-embedding path; None: no such input).
    use_linear_in_transformer: linear ``proj_in``/``proj_out`` (SD 2.x) instead of 1x1 convs (SD 1.x).
    use_checkpoint: non-reentrant gradient checkpointing of every ResBlock and transformer block.
    dropout: in ResBlocks, attention outputs and feed-forwards.
    use_scale_shift_norm: the time embedding scales and shifts the second GroupNorm instead of adding.
    middle_attention: SpatialTransformer between the two middle ResBlocks (as SD).
    num_groups: GroupNorm groups (every width must be divisible by it).
    """

    in_channels: int
    out_channels: int
    model_channels: int
    channel_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (2, 4)
    num_head_channels: int = 32
    num_heads: int = -1
    transformer_depth: tuple[int, ...] | int = 1
    context_dim: int | None = None
    pooled_cond_dim: int | None = None
    use_linear_in_transformer: bool = True
    use_checkpoint: bool = False
    dropout: float = 0.0
    use_scale_shift_norm: bool = False
    middle_attention: bool = True
    num_groups: int = 32
    depth_per_level: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        mult = tuple(int(m) for m in self.channel_mult)
        object.__setattr__(self, "channel_mult", mult)
        object.__setattr__(self, "attention_resolutions", tuple(int(a) for a in self.attention_resolutions))
        if not mult or min(mult) < 1:
            raise ValueError(f"channel_mult must be a non-empty list of positive ints, got {self.channel_mult}")
        if self.num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {self.num_res_blocks}")
        factors = [2**level for level in range(len(mult))]
        for factor in self.attention_resolutions:
            if factor not in factors:
                raise ValueError(
                    f"attention_resolutions entry {factor} is not a downsampling factor of this UNet {factors}"
                )
        depth = self.transformer_depth
        depth = (int(depth),) * len(mult) if isinstance(depth, int) else tuple(int(d) for d in depth)
        if len(depth) != len(mult) or min(depth) < 1:
            raise ValueError(
                f"transformer_depth must be an int or one positive int per level ({len(mult)}), "
                f"got {self.transformer_depth}"
            )
        object.__setattr__(self, "depth_per_level", depth)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.model_channels

    def transformer(self, channels: int, level: int) -> SpatialTransformer:
        """A SpatialTransformer for ``channels`` at resolution level ``level``."""
        heads, dim_head = resolve_heads(channels, self.num_heads, self.num_head_channels)
        return SpatialTransformer(
            channels,
            heads,
            dim_head,
            depth=self.depth_per_level[level],
            context_dim=self.context_dim,
            dropout=self.dropout,
            use_linear=self.use_linear_in_transformer,
            use_checkpoint=self.use_checkpoint,
            num_groups=self.num_groups,
        )

    def resblock(self, channels: int, out_channels: int) -> ResBlock:
        return ResBlock(
            channels,
            self.time_embed_dim,
            out_channels,
            dropout=self.dropout,
            use_scale_shift_norm=self.use_scale_shift_norm,
            use_checkpoint=self.use_checkpoint,
            num_groups=self.num_groups,
        )


class UNetEncoder(nn.Module):
    """Time embedding, input blocks and middle block of the UNet.

    ``forward(x, timesteps, context, hint=None)`` returns one feature map per skip connection plus the
    middle-block output last; ``skip_channels`` lists their channel counts in the same order.
    ``hint`` [B, model_channels, H, W] is added after the first input convolution (ControlNet).
    ``pooled_cond`` [B, pooled_cond_dim] is required exactly when the config sets ``pooled_cond_dim``.
    """

    def __init__(self, **unet_kwargs):
        super().__init__()
        cfg = validated(UNetConfig, unet_kwargs, "unet_config")
        self.config = cfg
        mc, ted = cfg.model_channels, cfg.time_embed_dim
        self.time_embed = nn.Sequential(nn.Linear(mc, ted), nn.SiLU(), nn.Linear(ted, ted))
        if cfg.pooled_cond_dim is not None:
            self.label_emb = nn.Sequential(nn.Linear(cfg.pooled_cond_dim, ted), nn.SiLU(), nn.Linear(ted, ted))
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(nn.Conv2d(cfg.in_channels, mc, 3, padding=1))])
        skip_channels = [mc]
        ch = mc
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers: list[nn.Module] = [cfg.resblock(ch, mult * mc)]
                ch = mult * mc
                if 2**level in cfg.attention_resolutions:
                    layers.append(cfg.transformer(ch, level))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch)))
                skip_channels.append(ch)
        last = len(cfg.channel_mult) - 1
        middle = [cfg.resblock(ch, ch)]
        if cfg.middle_attention:
            middle.append(cfg.transformer(ch, last))
        middle.append(cfg.resblock(ch, ch))
        self.middle_block = TimestepEmbedSequential(*middle)
        self.skip_channels = skip_channels + [ch]

    def embed_time(self, timesteps: torch.Tensor, pooled_cond: torch.Tensor | None = None) -> torch.Tensor:
        """Time embedding [B, 4*model_channels] of timesteps [B], plus the embedded pooled condition."""
        emb = self.time_embed(timestep_embedding(timesteps, self.config.model_channels))
        expected = self.config.pooled_cond_dim
        if expected is None:
            if pooled_cond is not None:
                raise ValueError("this UNet has no pooled_cond_dim, but a pooled condition was given")
            return emb
        if pooled_cond is None or pooled_cond.shape != (timesteps.shape[0], expected):
            got = None if pooled_cond is None else tuple(pooled_cond.shape)
            raise ValueError(f"pooled_cond must have shape ({timesteps.shape[0]}, {expected}), got {got}")
        return emb + self.label_emb(pooled_cond.to(emb.dtype))

    def encode(
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        context: torch.Tensor | None,
        hint: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Features for a precomputed time embedding ``emb`` (see ``forward``)."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"UNet input must be [B, {self.config.in_channels}, H, W], got {tuple(x.shape)}")
        feats = []
        h = x
        for index, block in enumerate(self.input_blocks):
            h = block(h, emb, context)
            if index == 0 and hint is not None:
                if hint.shape != h.shape:
                    raise ValueError(f"hint must have shape {tuple(h.shape)}, got {tuple(hint.shape)}")
                h = h + hint
            feats.append(h)
        feats.append(self.middle_block(h, emb, context))
        return feats

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor | None,
        hint: torch.Tensor | None = None,
        pooled_cond: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        return self.encode(x, self.embed_time(timesteps, pooled_cond), context, hint)


class UNetModel(nn.Module):
    """Full denoising UNet: ``encoder`` (a ``UNetEncoder``), ``output_blocks`` and ``out``.

    ``forward(x, timesteps, context, control=None, pooled_cond=None)``: ``control`` holds one tensor per
    entry of ``encoder.skip_channels`` (skips first, middle last) added to the skips and the middle output.
    """

    def __init__(self, **unet_kwargs):
        super().__init__()
        self.encoder = UNetEncoder(**unet_kwargs)
        cfg = self.config = self.encoder.config
        mc = cfg.model_channels
        skip_channels = list(self.encoder.skip_channels[:-1])
        ch = self.encoder.skip_channels[-1]
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for index in range(cfg.num_res_blocks + 1):
                layers: list[nn.Module] = [cfg.resblock(ch + skip_channels.pop(), mult * mc)]
                ch = mult * mc
                if 2**level in cfg.attention_resolutions:
                    layers.append(cfg.transformer(ch, level))
                if level and index == cfg.num_res_blocks:
                    layers.append(Upsample(ch))
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(
            group_norm(ch, cfg.num_groups), nn.SiLU(), zero_module(nn.Conv2d(ch, cfg.out_channels, 3, padding=1))
        )

    @property
    def skip_channels(self) -> list[int]:
        return self.encoder.skip_channels

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor | None,
        control: list[torch.Tensor] | None = None,
        pooled_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        emb = self.encoder.embed_time(timesteps, pooled_cond)
        skips = self.encoder.encode(x, emb, context)
        if control is not None:
            if len(control) != len(skips):
                raise ValueError(f"control must hold {len(skips)} tensors (skips + middle), got {len(control)}")
            skips = [s + c for s, c in zip(skips, control)]
        h = skips.pop()
        for block in self.output_blocks:
            h = torch.cat([h, skips.pop()], dim=1)
            h = block(h, emb, context, out_size=tuple(skips[-1].shape[-2:]) if skips else None)
        return self.out(h)
