"""Colour-fundus encoder: an open_clip visual tower returning projected patch tokens [B, N, D] and,
optionally, one projected pooled vector [B, G] of the whole photograph."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import open_clip
import torch
import torch.nn.functional as F
from einops import rearrange
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.modified_resnet import ModifiedResNet
from open_clip.transformer import VisionTransformer
from torch import nn

from ldm.modules.checkpointing import checkpointed
from ldm.util.checkpoints import read_state_dict
from ldm.util.config import validated

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisionTowerConfig:
    """Validated open_clip visual tower: a ViT (int ``layers``, ``patch_size`` needed) or a ModifiedResNet
    (a list of four block counts as ``layers``); ``width`` is the ViT width or the ResNet stem width,
    ``head_width`` the attention head width, ``mlp_ratio`` the ViT's MLP expansion."""

    image_size: int = 224
    layers: int | tuple[int, ...] = 12
    width: int = 768
    head_width: int = 64
    patch_size: int | None = None
    mlp_ratio: float = 4.0

    def __post_init__(self):
        if isinstance(self.layers, (list, tuple)):
            object.__setattr__(self, "layers", tuple(int(n) for n in self.layers))
        elif self.patch_size is None:
            raise ValueError(f"vision_cfg of a ViT tower (layers={self.layers}) needs patch_size")

    @property
    def is_resnet(self) -> bool:
        return isinstance(self.layers, tuple)


def resolve_vision_cfg(model_name: str | None, vision_cfg: Mapping[str, Any] | None) -> VisionTowerConfig:
    """The tower config of a built-in open_clip model name or of the explicit `vision_cfg` block."""
    if (model_name is None) == (vision_cfg is None):
        raise ValueError(f"CFEncoder needs exactly one of model_name or vision_cfg, got model_name={model_name!r}, "
                         f"vision_cfg={vision_cfg!r}")
    if vision_cfg is not None:
        return validated(VisionTowerConfig, vision_cfg, "vision_cfg")
    if ":" in model_name:  # 'hf-hub:' / 'local-dir:' schemas may download or read foreign configs
        raise ValueError(f"CFEncoder model_name {model_name!r}: only built-in open_clip names are allowed "
                         f"(e.g. 'RN50', 'ViT-B-16'); give local weights with `pretrained: /path`")
    model_cfg = open_clip.get_model_config(model_name)
    if model_cfg is None:
        raise ValueError(f"CFEncoder model_name {model_name!r} is not an open_clip model config; "
                         f"known names include {open_clip.list_models()[:8]} ...")
    known = {f.name for f in fields(VisionTowerConfig)}  # open_clip's other keys do not shape these towers
    return VisionTowerConfig(**{k: v for k, v in model_cfg["vision_cfg"].items() if k in known})


def build_vision_tower(cfg: VisionTowerConfig) -> nn.Module:
    """Build a randomly initialised open_clip ViT or ModifiedResNet."""
    if cfg.is_resnet:
        # output_dim only shapes the pooled head, which CFEncoder discards
        return ModifiedResNet(layers=list(cfg.layers), output_dim=cfg.width,
                              heads=cfg.width * 32 // cfg.head_width, image_size=cfg.image_size, width=cfg.width)
    return VisionTransformer(image_size=cfg.image_size, patch_size=cfg.patch_size, width=cfg.width,
                             layers=cfg.layers, heads=max(1, cfg.width // cfg.head_width),
                             mlp_ratio=float(cfg.mlp_ratio), output_dim=cfg.width, output_tokens=True)


def load_tower_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read visual-tower weights from a local safetensors/torch file (full CLIP or visual-only keys)."""
    state = read_state_dict(path, "CF encoder tower weights: a local open_clip checkpoint (e.g. "
                                  "open_clip_model.safetensors of the chosen architecture, downloaded beforehand)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("visual.") for k in state):
        state = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    return state


@contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers of ``module`` run exactly as before (same arguments, so the same tensors saved for
    backward) but update throw-away copies of their running statistics and batch counters."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    names = ("running_mean", "running_var", "num_batches_tracked")
    kept = [{name: getattr(norm, name) for name in names} for norm in norms]
    for norm, buffers in zip(norms, kept):
        for name, value in buffers.items():
            setattr(norm, name, value.clone())
    try:
        yield
    finally:
        for norm, buffers in zip(norms, kept):
            for name, value in buffers.items():
                setattr(norm, name, value)


def checkpointed_bn(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, owner: nn.Module,
                    enabled: bool) -> torch.Tensor:
    """``checkpointed(fn, x)`` for a part with BatchNorm layers (in ``owner``): the recomputation in the
    backward pass does not update the running statistics a second time."""
    calls = 0

    def run(inp: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 1:
            return fn(inp)
        with frozen_running_stats(owner):
            return fn(inp)

    return checkpointed(run, x, enabled=enabled)


class CFEncoder(nn.Module):
    """Encode a CF image in [-1, 1] into `context_dim` tokens for cross-attention.

    ViT towers give their patch tokens (after `ln_post`), ModifiedResNet towers their last feature map
    flattened; a linear layer (plus a learned per-token position) maps them to `context_dim`.
    With `pooled_dim`, `encode` also returns the tower's pooled vector (a ViT's class token, a ResNet's
    mean feature) projected to `pooled_dim`: the whole-image summary that the UNet adds to its time
    embedding. `trainable=False` freezes the tower (no grads, kept in eval mode); projections always train.
    `use_checkpoint` recomputes the tower's activations in the backward pass instead of keeping them
    (open_clip's per-block checkpointing of a ViT; the stem and each bottleneck of a ResNet).
    """

    def __init__(self, context_dim: int, model_name: str | None = None, vision_cfg: Mapping[str, Any] | None = None,
                 pretrained: str | None = None, trainable: bool = True, pooled_dim: int | None = None,
                 use_checkpoint: bool = False):
        super().__init__()
        cfg = resolve_vision_cfg(model_name, vision_cfg)
        self.tower = build_vision_tower(cfg)
        self.is_resnet = isinstance(self.tower, ModifiedResNet)
        self.use_checkpoint = bool(use_checkpoint)
        if not self.is_resnet:
            self.tower.set_grad_checkpointing(self.use_checkpoint)
        # parts producing only the pooled vector are dropped (unused parameters break DDP and EMA)
        if self.is_resnet:
            self.tower.attnpool = None
            feature_dim = cfg.width * 32
            grid = cfg.image_size // 32
            self.num_tokens = grid * grid
        else:
            self.tower.proj = None
            feature_dim = self.tower.transformer.width
            self.num_tokens = self.tower.grid_size[0] * self.tower.grid_size[1]
        if pretrained:
            self.load_tower_weights(pretrained, cfg)
        self.image_size = cfg.image_size
        self.context_dim = context_dim
        self.trainable = trainable
        self.token_norm = nn.LayerNorm(feature_dim) if self.is_resnet else nn.Identity()
        self.proj = nn.Linear(feature_dim, context_dim)
        self.token_pos = nn.Parameter(torch.zeros(self.num_tokens, context_dim))
        self.pooled_proj = nn.Linear(feature_dim, pooled_dim) if pooled_dim is not None else None
        self.register_buffer("mean", torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)
        self.tower.requires_grad_(trainable)
        if not trainable:
            self.tower.eval()

    def load_tower_weights(self, path: str | Path, cfg: VisionTowerConfig) -> None:
        """Load the tower from a local file, ignoring the dropped pooling/projection weights."""
        state = {k: v for k, v in load_tower_state_dict(path).items()
                 if k != "proj" and not k.startswith("attnpool.")}
        mismatch = f"CF encoder weights {path} do not match the tower config {cfg}"
        try:
            missing, unexpected = self.tower.load_state_dict(state, strict=False)
        except RuntimeError as err:  # tensors of the wrong shape
            raise ValueError(f"{mismatch}: {err}") from err
        if missing or unexpected:
            raise ValueError(f"{mismatch}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        logger.info("Loaded CF encoder tower weights from %s", path)

    def train(self, mode: bool = True) -> "CFEncoder":
        """Switch modes but keep a frozen tower in eval mode (BatchNorm statistics stay fixed)."""
        super().train(mode)
        if not self.trainable:
            self.tower.eval()
        return self

    def preprocess(self, cf: torch.Tensor) -> torch.Tensor:
        """[-1, 1] RGB -> [0, 1] -> resized to the tower's size -> CLIP mean/std normalised."""
        if cf.ndim != 4 or cf.shape[1] != 3:
            raise ValueError(f"CFEncoder expects cf of shape [B, 3, h, w], got {tuple(cf.shape)}")
        x = (cf + 1.0) / 2.0
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def tower_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unprojected pooled vector [B, feature_dim] and tokens [B, N, feature_dim] of a preprocessed image."""
        if self.is_resnet:
            t = self.tower
            h = checkpointed_bn(t.stem, x, t, self.use_checkpoint)
            for block in (*t.layer1, *t.layer2, *t.layer3, *t.layer4):
                h = checkpointed_bn(block, h, block, self.use_checkpoint)
            tokens = rearrange(h, "b c h w -> b (h w) c")
            return tokens.mean(dim=1), tokens
        return self.tower(x)

    def encode(self, cf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens [B, num_tokens, context_dim] and the pooled vector [B, pooled_dim] (None without
        `pooled_dim`) of a CF batch in [-1, 1]."""
        pooled, tokens = self.tower_features(self.preprocess(cf))
        context = self.proj(self.token_norm(tokens)) + self.token_pos.to(tokens.dtype)
        if self.pooled_proj is None:
            return context, None
        return context, self.pooled_proj(self.token_norm(pooled))

    def forward(self, cf: torch.Tensor) -> torch.Tensor:
        """Tokens [B, num_tokens, context_dim] of a CF batch in [-1, 1]."""
        return self.encode(cf)[0]
