"""ControlLDM: the stage-2 LightningModule turning a CF image into the six OCT B-scans in latent space."""
from __future__ import annotations

import copy
import inspect
import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn

from cldm.cf_encoder import CFEncoder
from cldm.conditioning import drop_conditions
from cldm.controlnet import ControlNet, ControlNetConfig, num_downsampling_stages
from cldm.timestep_losses import TimestepLossBuckets
from ldm.models.autoencoder import AutoencoderKL
from ldm.models.autoencoder_export import TARGET as AUTOENCODER_TARGET
from ldm.models.autoencoder_export import autoencoder_spec, load_exported_autoencoder
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER, make_sampler
from ldm.models.diffusion.schedule import NoiseSchedule, check_parameterization
from ldm.modules.ema import EMA
from ldm.modules.unet import UNetModel
from ldm.optim import build_adamw, warmup_decay
from ldm.randomness import StepRandomness
from ldm.sd_init import init_unet_from_sd
from ldm.util.config import (check_keys, check_params, check_stored_targets, instantiate_from_config, require,
                              upgrade_stored_spec, validated)

logger = logging.getLogger(__name__)

SAMPLING_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # `sample(precision=...)`
FIRST_STAGE_SPEC_KEY = "first_stage_spec"  # checkpoint entry: the autoencoder's config, for a moved export
# the `cf_encoder_config` keys: CFEncoder's arguments but the two ControlLDM sets from `unet_config`
CF_ENCODER_KEYS = tuple(name for name in inspect.signature(CFEncoder).parameters
                        if name not in ("context_dim", "pooled_dim"))


def build_first_stage(first_stage: str | None, first_stage_config: Mapping | None,
                      scale_factor: float | None) -> tuple[nn.Module, float]:
    """Frozen autoencoder and latent scale factor, from a stage-1 export or a target/params block."""
    if (first_stage is None) == (first_stage_config is None):
        raise ValueError("ControlLDM needs exactly one of first_stage (a stage-1 export folder) or "
                         f"first_stage_config (target/params), got first_stage={first_stage!r}, "
                         f"first_stage_config={first_stage_config!r}")
    if first_stage is not None:
        if scale_factor is not None:
            raise ValueError(f"scale_factor={scale_factor} is given but the export {first_stage} carries its own")
        autoencoder, scale_factor = load_exported_autoencoder(first_stage)
    else:
        if scale_factor is None:
            raise ValueError("first_stage_config needs an explicit scale_factor (1/std of the latents)")
        autoencoder = instantiate_from_config(first_stage_config)
    autoencoder.requires_grad_(False)
    return autoencoder.eval(), float(scale_factor)


class ControlLDM(StepRandomness, pl.LightningModule):
    """Latent diffusion conditioned on a CF image: cross-attention to CF tokens plus an optional ControlNet.

    Trains the UNet (its decoder only with `controlnet.sd_locked`), the ControlNet, the CF encoder's
    projection (and tower if trainable) and a learned null condition used with probability `p_uncond`
    for classifier-free guidance. EMA weights of every trainable parameter are kept in the checkpoint,
    updated once per optimiser step and swapped in once per validation run. Every random draw of a
    training step comes from `micro_batch_generator` (run seed, global rank, global step, micro-batch).
    """

    def __init__(self, unet_config: dict, cf_encoder_config: dict, image_size: int | Sequence[int], cf_size: int,
                 first_stage: str | None = None, first_stage_config: dict | None = None,
                 scale_factor: float | None = None, controlnet: dict | None = None, schedule: dict | None = None,
                 parameterization: str = "eps", p_uncond: float = 0.1, use_ema: bool = True,
                 ema_decay: float = 0.999, learning_rate: float = 1e-4, weight_decay: float = 0.0,
                 adam_betas: Sequence[float] = (0.9, 0.999), warmup_steps: int = 0, lr_decay: str = "constant",
                 min_lr_ratio: float = 0.0, optimizer: dict | None = None, loss_buckets: int = 4,
                 unet_init: str | None = None, val_seed: int = 0):
        super().__init__()
        self.save_hyperparameters()  # load_from_checkpoint rebuilds the model from these (plain values only)
        check_parameterization(parameterization)
        self.first_stage, self.scale_factor = build_first_stage(first_stage, first_stage_config, scale_factor)
        self.image_size = (int(image_size),) * 2 if isinstance(image_size, int) else tuple(int(s) for s in image_size)
        self.latent_shape = self._measure_latent_shape()
        self.unet = UNetModel(**unet_config)
        if unet_init:
            logger.info("UNet initialised from %s: %s", unet_init, init_unet_from_sd(self.unet, unet_init).summary())
        if "pooled_dim" in cf_encoder_config:
            raise ValueError("cf_encoder_config.pooled_dim is set from unet_config.pooled_cond_dim; remove it")
        check_keys("cf_encoder_config", cf_encoder_config, CF_ENCODER_KEYS)
        self.cf_encoder = CFEncoder(context_dim=int(unet_config["context_dim"]),
                                    pooled_dim=unet_config.get("pooled_cond_dim"), **cf_encoder_config)
        self.null_context = nn.Parameter(
            torch.randn(self.cf_encoder.num_tokens, self.cf_encoder.context_dim) * self.cf_encoder.context_dim**-0.5)
        self.controlnet_cfg = validated(ControlNetConfig, controlnet, "model.params.controlnet")
        self.controlnet = self._build_controlnet(unet_config, cf_size) if self.controlnet_cfg.enabled else None
        check_params("model.params.schedule", NoiseSchedule, schedule or {})
        self.schedule = NoiseSchedule(**(schedule or {}))
        self.parameterization = parameterization
        self.p_uncond = float(p_uncond)
        self.use_ema = use_ema
        self.learning_rate, self.weight_decay, self.adam_betas = learning_rate, weight_decay, tuple(adam_betas)
        self.warmup_steps = int(warmup_steps)
        self.lr_schedule = dict(decay=lr_decay, min_ratio=float(min_lr_ratio))
        warmup_decay(self.warmup_steps, 0, **self.lr_schedule)  # bad settings fail at build time
        self.optimizer_settings = dict(optimizer or {})
        self.loss_buckets = int(loss_buckets)
        self.val_seed = int(val_seed)
        # every trainable part: UNet, ControlNet, CF encoder (projection, tower if trainable), null tokens
        self.ema = EMA(list(self.trainable_named_parameters().values()), decay=ema_decay) if use_ema else None
        if self.ema is not None:  # DDP would broadcast every shadow from rank 0 before each forward
            self._ddp_params_and_buffers_to_ignore = self.ema.ddp_ignored_buffers("ema")

    # ----------------------------------------------------------------------------------------- build
    def _measure_latent_shape(self) -> tuple[int, int, int]:
        """Latent [C, h, w] of one OCT volume, measured with the first stage (no assumed factor or slice count)."""
        probe = torch.zeros(1, self.first_stage.in_channels, *self.image_size)
        with torch.no_grad():
            z = self.first_stage.encode(probe).mode()
        return tuple(z.shape[1:])

    def _build_controlnet(self, unet_config: dict, cf_size: int) -> ControlNet:
        cfg = self.controlnet_cfg
        stages = num_downsampling_stages(int(cf_size), max(self.latent_shape[1:]))
        net = ControlNet(unet_config, hint_stages=stages, hint_channels=cfg.hint_channels,
                         hint_hidden_channels=cfg.hint_hidden_channels, control_scales=cfg.control_scales,
                         only_mid_control=cfg.only_mid_control)
        if cfg.init_from_unet:
            net.init_from_unet(self.unet)
        if cfg.sd_locked:
            self.unet.encoder.requires_grad_(False)  # frozen by requires_grad only: unlocking needs no code change
        return net

    default_compile_targets = ("unet", "controlnet")

    def compile_targets(self) -> dict[str, nn.Module]:
        """The parts `speed.compile` may compile (by name)."""
        parts = {"unet": self.unet, "controlnet": self.controlnet, "cf_encoder": self.cf_encoder,
                 "first_stage": self.first_stage}
        return {name: module for name, module in parts.items() if module is not None}

    def trainable_named_parameters(self) -> dict[str, nn.Parameter]:
        """Every parameter the optimiser updates (and EMA tracks), by name."""
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def train(self, mode: bool = True) -> "ControlLDM":
        super().train(mode)
        self.first_stage.eval()  # frozen, never in training mode
        return self

    # ------------------------------------------------------------------------------------ conditions
    @torch.no_grad()
    def encode_oct(self, oct_volume: torch.Tensor, sample_posterior: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled float32 latent of an OCT volume [B, 6, H, W] in [-1, 1] (a posterior sample, or its mean)."""
        posterior = self.first_stage.encode(oct_volume)
        return (posterior.sample(generator) if sample_posterior else posterior.mode()) * self.scale_factor

    @torch.no_grad()
    def decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        """OCT volume [B, 6, H, W] in [-1, 1] from a scaled latent."""
        return self.first_stage.decode(z / self.scale_factor).clamp(-1.0, 1.0)

    def encode_condition(self, cf: torch.Tensor) -> dict[str, torch.Tensor]:
        """CF tokens (plus the pooled CF vector and ControlNet hint features when the model has them):
        computed once per batch, reused at every step."""
        context, pooled_cond = self.cf_encoder.encode(cf)
        cond = {"context": context}
        if pooled_cond is not None:
            cond["pooled"] = pooled_cond
        if self.controlnet is not None:
            cond["hint"] = self.controlnet.encode_hint(cf, self.latent_shape[1:])
        return cond

    def null_condition(self, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The learned null tokens, and zeros for every other condition (pooled vector, hint), batched like `like`."""
        context = like["context"]
        null = {key: torch.zeros_like(value) for key, value in like.items() if key != "context"}
        null["context"] = self.null_context.to(context.dtype).expand(context.shape[0], -1, -1)
        return null

    def apply_model(self, x: torch.Tensor, t: torch.Tensor, cond: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """UNet output (eps or v) for latents `x` at timesteps `t` under condition `cond`."""
        control = None
        pooled_cond = cond.get("pooled")
        if self.controlnet is not None:
            control = self.controlnet(x, t, cond["context"], cond["hint"], pooled_cond=pooled_cond)
        return self.unet(x, t, cond["context"], control=control, pooled_cond=pooled_cond)

    # -------------------------------------------------------------------------------------- training
    def diffusion_loss(self, batch: Mapping[str, torch.Tensor], generator: torch.Generator,
                       p_uncond: float | None = None, sample_posterior: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-sample MSE [B] to the eps/v target, the timesteps [B] used and the drop mask [B].

        Every draw (posterior sample, drop mask, timesteps, noise) comes from `generator`, in that order.
        Latents, noise and target are float32 whatever the autocast dtype; only the model runs in it.
        """
        z0 = self.encode_oct(batch["oct"], sample_posterior, generator)
        cond = self.encode_condition(batch["cf"])
        cond, dropped = drop_conditions(cond, self.null_condition(cond),
                                        self.p_uncond if p_uncond is None else p_uncond, generator)
        t = self.schedule.sample_timesteps(z0.shape[0], z0.device, generator)
        noise = torch.randn(z0.shape, generator=generator, device=generator.device, dtype=torch.float32)
        noise = noise.to(z0.device)
        out = self.apply_model(self.schedule.q_sample(z0, t, noise), t, cond)
        target = self.schedule.training_target(z0, noise, t, self.parameterization)
        per_sample = F.mse_loss(out.float(), target, reduction="none").mean(dim=(1, 2, 3))
        return per_sample, t, dropped

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        """Loss of one micro-batch, with its per-sample losses and timesteps for `TimestepLossBuckets`."""
        accumulate = self._trainer.accumulate_grad_batches if self._trainer is not None else 1
        generator = self.micro_batch_generator(batch_idx % accumulate)
        per_sample, t, _ = self.diffusion_loss(batch, generator, sample_posterior=True)
        loss = per_sample.mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=per_sample.shape[0])
        return {"loss": loss, "per_sample_loss": per_sample.detach(), "timesteps": t}

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        """Loss with the condition always on and seeded noise/timesteps, so values compare across steps."""
        generator = torch.Generator(device=self.device).manual_seed(self.val_seed + batch_idx)
        with self.ema_weights():  # already swapped in for the whole run by on_validation_epoch_start
            per_sample, _, _ = self.diffusion_loss(batch, generator, p_uncond=0.0)
        loss = per_sample.mean()
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=per_sample.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        if self.use_ema and self.ema is not None:
            self.ema.swap()

    def on_validation_epoch_end(self) -> None:
        if self.use_ema and self.ema is not None:
            self.ema.swap()

    def setup(self, stage: str) -> None:
        if stage == "fit" and isinstance(self.trainer.strategy, FSDPStrategy):
            raise ValueError(
                "trainer.strategy=fsdp is not supported for stage 2 (ControlLDM): its EMA and sampling need "
                "whole parameters. Use trainer.strategy=ddp: the APTOS stage-2 config needs about 17-20 GiB per "
                "GPU at batch 8 with bf16-mixed and gradient checkpointing (README, 'Multi-GPU and precision').")

    def configure_callbacks(self) -> list[pl.Callback]:
        return [TimestepLossBuckets(self.schedule.num_timesteps, self.loss_buckets)]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the autoencoder's config beside its weights, so inference can rebuild it without the export."""
        if self.ema is not None and self.ema.swapped:
            raise RuntimeError("a checkpoint was requested while the EMA weights are swapped into the model")
        if isinstance(self.first_stage, AutoencoderKL):
            checkpoint[FIRST_STAGE_SPEC_KEY] = autoencoder_spec(self.first_stage, self.scale_factor)

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Step the optimiser, then the EMA: once per optimiser step, whatever the gradient accumulation."""
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update()

    def configure_optimizers(self):
        """AdamW (fused where the device has it, see `ldm.optim`) with warm-up and constant or cosine decay."""
        optimizer = build_adamw(self.trainable_named_parameters().values(), self.learning_rate, self.adam_betas,
                                self.weight_decay, self.optimizer_settings)
        total = self._trainer.max_steps if self._trainer is not None and self._trainer.max_steps > 0 else 0
        factor = warmup_decay(self.warmup_steps, total, **self.lr_schedule)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------------------------- inference
    @contextmanager
    def ema_weights(self, enabled: bool | None = None) -> Iterator[None]:
        """Temporarily swap the EMA weights in (default: when `use_ema`); nested use swaps nothing more."""
        enabled = self.use_ema if enabled is None else enabled
        if not enabled or self.ema is None:
            with nullcontext():
                yield
            return
        with self.ema.average_parameters():
            yield

    def merge_ema(self) -> None:
        """Copy the EMA weights into the model for good and drop the EMA (inference: load once, no swaps)."""
        if self.ema is None:
            raise ValueError("this model has no EMA weights to merge")
        self.ema.copy_to()
        self.ema = None
        self.use_ema = False

    @torch.no_grad()
    def sample(self, cf: torch.Tensor, steps: int | None = None, eta: float = 0.0, guidance_scale: float = 1.0,
               generator: torch.Generator | Sequence[torch.Generator] | None = None, use_ema: bool | None = None,
               progress: bool = False, sampler: str = DEFAULT_SAMPLER, precision: str = "fp32") -> torch.Tensor:
        """Sample OCT volumes [B, 6, H, W] in [-1, 1] for CF images [B, 3, h, w] in [-1, 1].

        `sampler` is `ddim` or `dpmpp-2m` (see `ldm.models.diffusion.samplers`); `steps` defaults to the
        sampler's own default (50 and 15); `eta` > 0 is DDIM's only. `generator` may be one generator or
        one per item; with a list, all the noise of item i (start and eta > 0 steps) comes from its own
        generator, so results do not depend on the batch makeup. `precision` (fp32, bf16, fp16) autocasts
        the CF encoder, UNet and ControlNet; the sampler's own arithmetic stays float32, and the decoder runs
        in bf16 or float32 (fp16 would overflow in a VAE decoder's activations).
        """
        if precision not in SAMPLING_DTYPES:
            raise ValueError(f"precision must be one of {sorted(SAMPLING_DTYPES)}, got {precision!r}")
        dtype = SAMPLING_DTYPES[precision]
        solver = make_sampler(sampler, self.schedule, self.parameterization)
        was_training = self.training
        self.eval()
        try:
            with self.ema_weights(use_ema):
                with torch.autocast(cf.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    cond = self.encode_condition(cf)
                    uncond = self.null_condition(cond) if guidance_scale != 1.0 else None
                    z = solver.sample(self.apply_model, (cf.shape[0], *self.latent_shape), cond, uncond,
                                      steps=steps, eta=eta, guidance_scale=guidance_scale, generator=generator,
                                      progress=progress, device=cf.device)
                with torch.autocast(cf.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    return self.decode_latent(z).float()
        finally:
            self.train(was_training)

    @classmethod
    def load_for_inference(cls, ckpt_path: str | Path, config: DictConfig | str | Path) -> "ControlLDM":
        """Build the model from a run config (or the path of the single YAML file a run saves) and load a
        checkpoint (weights_only).

        When the config's stage-1 export folder is gone (a run copied elsewhere), the autoencoder is
        rebuilt from the config the checkpoint keeps (see `on_save_checkpoint`); its weights are in the
        checkpoint anyway.
        """
        cfg = copy.deepcopy(config) if isinstance(config, DictConfig) else OmegaConf.load(config)
        ckpt_path = Path(ckpt_path)
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"stage-2 checkpoint not found: {ckpt_path}")
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        export = OmegaConf.select(cfg, "model.params.first_stage")
        if export and not Path(export).exists():
            spec = state.get(FIRST_STAGE_SPEC_KEY)
            if spec is None:
                raise FileNotFoundError(
                    f"stage-1 export folder not found: {export} (model.params.first_stage), and {ckpt_path} "
                    f"keeps no copy of the autoencoder's config; if the run was moved, pass --first-stage "
                    f"<ae_run>/export")
            logger.info("stage-1 export %s not found: autoencoder rebuilt from the config kept in %s", export,
                        ckpt_path)
            spec = upgrade_stored_spec(spec, f"{ckpt_path} ({FIRST_STAGE_SPEC_KEY})")
            check_stored_targets(spec, {"target": AUTOENCODER_TARGET}, f"{ckpt_path} ({FIRST_STAGE_SPEC_KEY})")
            cfg.model.params.first_stage = None
            cfg.model.params.first_stage_config = {"target": spec["target"], "params": spec["params"]}
            cfg.model.params.scale_factor = spec["scale_factor"]
        model = instantiate_from_config(require(cfg, "model"))
        if not isinstance(model, cls):
            raise ValueError(f"config model target builds {type(model).__name__}, expected {cls.__name__}")
        model.load_state_dict(state.get("state_dict", state))
        return model.eval()
