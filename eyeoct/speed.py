"""The `speed:` block of a training config: settings that change how fast a run goes, not what it computes
(beyond floating-point rounding). Every one is off, or the PyTorch default, unless the config turns it on.

    speed:
      compile: false              # true, or {mode: default|reduce-overhead|max-autotune, modules: [unet, ...]}
      channels_last: false        # convolution weights in NHWC layout (faster convolutions on recent GPUs)
      matmul_precision: highest   # "high": TF32 matmuls on Ampere and newer GPUs
      cudnn_benchmark: false      # cuDNN times its convolution algorithms per input shape and keeps the fastest
      ddp: {static_graph: false, gradient_as_bucket_view: false}   # with trainer.strategy: ddp
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.utilities import GradClipAlgorithmType
from torch import nn

from eyeoct.config import ConfigError, to_container
from ldm.util.config import check_keys

logger = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
MATMUL_PRECISIONS = ("highest", "high", "medium")
DDP_OPTIONS = ("static_graph", "gradient_as_bucket_view")
SPEED_KEYS = ("compile", "channels_last", "matmul_precision", "cudnn_benchmark", "ddp")


@dataclass(frozen=True)
class SpeedSettings:
    """The validated `speed:` block (see the module docstring)."""

    compile: bool = False
    compile_mode: str = "default"
    compile_modules: tuple[str, ...] | None = None  # None: the model's default compile targets
    channels_last: bool = False
    matmul_precision: str = "highest"
    cudnn_benchmark: bool = False
    ddp: tuple[tuple[str, bool], ...] = ()

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "SpeedSettings":
        """Parse `cfg.speed` (absent: every setting off), naming any unknown key or bad value."""
        block = to_container(OmegaConf.select(cfg, "speed", default=None)) or {}
        if not isinstance(block, dict):
            raise ConfigError(f"speed must be a mapping of {list(SPEED_KEYS)}, got {block!r}")
        check_keys("speed", block, SPEED_KEYS)
        compile_node = block.get("compile", False)
        if isinstance(compile_node, dict):
            check_keys("speed.compile", compile_node, ("mode", "modules"))
            mode, modules = compile_node.get("mode", "default"), compile_node.get("modules")
            compile_on = True
        elif isinstance(compile_node, bool):
            mode, modules, compile_on = "default", None, compile_node
        else:
            raise ConfigError(f"speed.compile must be true, false or {{mode: ..., modules: [...]}}, got {compile_node!r}")
        if mode not in COMPILE_MODES:
            raise ConfigError(f"speed.compile.mode must be one of {COMPILE_MODES}, got {mode!r}")
        precision = block.get("matmul_precision", "highest")
        if precision not in MATMUL_PRECISIONS:
            raise ConfigError(f"speed.matmul_precision must be one of {MATMUL_PRECISIONS}, got {precision!r}")
        ddp = block.get("ddp") or {}
        check_keys("speed.ddp", ddp, DDP_OPTIONS)
        for name in ("channels_last", "cudnn_benchmark"):
            if not isinstance(block.get(name, False), bool):
                raise ConfigError(f"speed.{name} must be true or false, got {block[name]!r}")
        return cls(compile=compile_on, compile_mode=mode, compile_modules=tuple(modules) if modules else None,
                   channels_last=block.get("channels_last", False), matmul_precision=precision,
                   cudnn_benchmark=block.get("cudnn_benchmark", False),
                   ddp=tuple((k, bool(v)) for k, v in ddp.items()))


def apply_to_process(settings: SpeedSettings) -> None:
    """Process-wide settings: the float32 matmul precision (TF32 with "high")."""
    torch.set_float32_matmul_precision(settings.matmul_precision)


def apply_to_model(model: nn.Module, settings: SpeedSettings) -> None:
    """channels_last weights, and `torch.compile` of the model's compile targets (in place: the state dict
    keeps its keys, so checkpoints do not depend on it). The model names its targets with
    `compile_targets() -> {name: module}` and its defaults with `default_compile_targets`."""
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    if not settings.compile:
        return
    targets = model.compile_targets() if hasattr(model, "compile_targets") else {}
    defaults = getattr(model, "default_compile_targets", tuple(targets))
    names = settings.compile_modules or tuple(name for name in defaults if name in targets)
    missing = sorted(set(names) - set(targets))
    if missing:
        raise ConfigError(f"speed.compile.modules {missing} are not parts of {type(model).__name__}; "
                          f"it can compile {sorted(targets)}")
    for name in names:
        targets[name].compile(mode=settings.compile_mode)
    logger.info("torch.compile (mode %s): %s", settings.compile_mode, ", ".join(names))


class BF16Autocast(MixedPrecision):
    """Lightning's `bf16-mixed` that also clips gradients before a fused optimiser step.

    Lightning refuses any clipping when the optimiser is fused, because under fp16 the fused kernel unscales
    the gradients itself. bf16 has no loss scaler: the gradients are the true ones, so clipping them before
    the step is exact and the fused AdamW can stay on.
    """

    def __init__(self, device: str) -> None:
        super().__init__("bf16-mixed", device)

    def clip_gradients(self, optimizer: torch.optim.Optimizer, clip_val: float = 0.0,
                       gradient_clip_algorithm: GradClipAlgorithmType = GradClipAlgorithmType.NORM) -> None:
        Precision.clip_gradients(self, optimizer, clip_val, gradient_clip_algorithm)


def _autocast_device(accelerator: str) -> str:
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu" if accelerator == "cpu" else "cuda"


def trainer_arguments(settings: SpeedSettings, trainer_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """`trainer_kwargs` with cuDNN benchmarking, `precision: bf16-mixed` as the `BF16Autocast` plugin and,
    for `strategy: ddp`, a DDP strategy with the DDP options."""
    kwargs = dict(trainer_kwargs)
    if str(kwargs.get("precision")) in ("bf16-mixed", "bf16"):  # "bf16": Lightning's alias
        del kwargs["precision"]
        device = _autocast_device(str(kwargs.get("accelerator", "auto")))
        kwargs["plugins"] = [*(kwargs.get("plugins") or []), BF16Autocast(device)]
    if "benchmark" in kwargs:
        raise ConfigError("set cuDNN benchmarking with speed.cudnn_benchmark, not trainer.benchmark")
    kwargs["benchmark"] = settings.cudnn_benchmark
    ddp = dict(settings.ddp)
    if any(ddp.values()):
        strategy = kwargs.get("strategy", "auto")
        if strategy != "ddp":
            raise ConfigError(f"speed.ddp {ddp} needs trainer.strategy: ddp, got {strategy!r}")
        kwargs["strategy"] = DDPStrategy(**ddp)
    return kwargs
