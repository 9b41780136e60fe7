"""KL autoencoder (stage 1) as a LightningModule (its latent-scale measurement and export/load are in
`ldm.models.autoencoder_export`).

Training uses manual optimisation with two optimisers (autoencoder, discriminator). Generator and
discriminator losses are summed into one backward: the generator term sees the discriminator's
parameters detached and the discriminator term sees the reconstruction detached, so each parameter
gets exactly its own gradient and DDP reduces every parameter once per step. Only the autoencoder
optimiser steps through Lightning's optimiser wrapper, so ``global_step`` counts generator updates
(one per ``accumulate_grad_batches`` batches, and one at the end of an epoch for a partial window, as
Lightning does) whether or not the discriminator trains. The posterior sample of a training step comes
from ``micro_batch_generator`` (run seed, global rank, global step, micro-batch).
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import FSDPStrategy

from ldm.metrics import psnr_per_volume, ssim_per_image
from ldm.modules.autoencoder_blocks import AutoencoderConfig, Decoder, Encoder, conv2d
from ldm.modules.distributions import DiagonalGaussianDistribution
from ldm.optim import build_adamw, warmup_decay
from ldm.randomness import StepRandomness
from ldm.util.config import instantiate_from_config, to_container, validated

logger = logging.getLogger(__name__)

DATA_RANGE = 2.0  # images live in [-1, 1]


class AutoencoderKL(StepRandomness, pl.LightningModule):
    """Encoder -> diagonal Gaussian posterior over z [B, z_channels, H/f, W/f] -> decoder.

    Args:
        ddconfig: architecture, read into an `AutoencoderConfig` (``ch``, ``ch_mult``, ``num_res_blocks``,
            ``in_channels``, ``out_ch``, ``z_channels``, ``dropout``, ``num_groups``, ``use_checkpoint``);
            kept as given in ``self.ddconfig`` for exports.
        lossconfig: target/params block of the training loss (None for inference-only models).
        input_key: key of the image tensor [B, C, H, W] in [-1, 1] in a batch dict.
        learning_rate, disc_learning_rate, adam_betas, weight_decay: AdamW settings (the discriminator's
            learning rate defaults to the autoencoder's); optimizer: ``{fused: auto|true|false}``
            (see ``ldm.optim.build_adamw``).
        warmup_steps, lr_decay ("constant" | "cosine"), min_lr_ratio: schedule over each optimiser's own
            steps (the discriminator's begin at the loss's ``start_step``).
        gradient_clip_val: clip each optimiser's gradient norm (0 = off); Lightning's automatic
            clipping does not apply to manual optimisation, so it is configured here.
        accumulate_grad_batches: batches per optimiser step (likewise configured here).
    """

    def __init__(self, *, ddconfig: Mapping[str, Any], lossconfig: Mapping[str, Any] | None = None,
                 input_key: str = "oct", learning_rate: float = 1e-4, disc_learning_rate: float | None = None,
                 adam_betas: tuple[float, float] = (0.5, 0.9), weight_decay: float = 0.0, warmup_steps: int = 0,
                 lr_decay: str = "constant", min_lr_ratio: float = 0.0, gradient_clip_val: float = 0.0,
                 accumulate_grad_batches: int = 1, optimizer: Mapping[str, Any] | None = None):
        super().__init__()
        self.config = validated(AutoencoderConfig, ddconfig, "ddconfig")
        if accumulate_grad_batches < 1:
            raise ValueError(f"accumulate_grad_batches must be >= 1, got {accumulate_grad_batches}")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.ddconfig = dict(to_container(ddconfig))
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)
        z_channels = self.config.z_channels
        self.quant_conv = conv2d(2 * z_channels, 2 * z_channels, 1)
        self.post_quant_conv = conv2d(z_channels, z_channels, 1)
        self.loss = None
        if lossconfig is not None:
            self.loss = instantiate_from_config(lossconfig, image_channels=self.config.out_ch)
        self.input_key = input_key

    default_compile_targets = ("encoder", "decoder")

    def compile_targets(self) -> dict[str, torch.nn.Module]:
        """The parts `speed.compile` may compile (by name)."""
        return {"encoder": self.encoder, "decoder": self.decoder}

    @property
    def in_channels(self) -> int:
        """Channels C of the images [B, C, H, W] this autoencoder encodes."""
        return self.config.in_channels

    @property
    def downsampling_factor(self) -> int:
        """Spatial factor f between image and latent."""
        return self.config.downsampling_factor

    def encode(self, x: torch.Tensor) -> DiagonalGaussianDistribution:
        """Posterior q(z | x) for images x [B, in_channels, H, W]."""
        return DiagonalGaussianDistribution(self.quant_conv(self.encoder(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images [B, out_ch, H, W] from latents z [B, z_channels, H/f, W/f] (unscaled)."""
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x: torch.Tensor, sample_posterior: bool = True,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, DiagonalGaussianDistribution]:
        posterior = self.encode(x)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode(z), posterior

    def get_input(self, batch: Any) -> torch.Tensor:
        """The image tensor of a batch (a dict holding ``input_key`` or a bare tensor), checked."""
        x = batch[self.input_key] if isinstance(batch, Mapping) and self.input_key in batch else batch
        if not isinstance(x, torch.Tensor):
            keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise KeyError(f"batch has no tensor under '{self.input_key}' (got {keys}); set model.params.input_key")
        expected = self.in_channels
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(f"'{self.input_key}' must be [B, {expected}, H, W], got {tuple(x.shape)}")
        return x

    # ----------------------------------------------------------------------------------- training
    def _require_loss(self):
        if self.loss is None:
            raise RuntimeError("this AutoencoderKL was built without a lossconfig and cannot be trained")
        return self.loss

    def configure_callbacks(self) -> list:
        # Runs before Lightning's own check, so the error can name the keys that do work here.
        trainer = self.trainer
        if trainer.accumulate_grad_batches != 1 or (trainer.gradient_clip_val or 0) > 0:
            raise ValueError(
                f"AutoencoderKL trains with manual optimisation: set model.params.accumulate_grad_batches and "
                f"model.params.gradient_clip_val instead of trainer.accumulate_grad_batches="
                f"{trainer.accumulate_grad_batches} / trainer.gradient_clip_val={trainer.gradient_clip_val}")
        return []

    def on_fit_start(self) -> None:
        self._require_loss()
        if self.loss.discriminator is not None and getattr(self.trainer.precision_plugin, "scaler", None):
            raise ValueError("precision 16-mixed (GradScaler) is not supported with the discriminator, whose "
                             "optimiser steps from the same backward; use bf16-mixed or 32")
        if isinstance(self.trainer.strategy, FSDPStrategy) and (
                self.loss.discriminator is not None or self.hparams.gradient_clip_val > 0):
            raise ValueError("strategy fsdp shards parameters, but the adaptive GAN weight and norm clipping need "
                             "them whole: use strategy ddp (the autoencoder is small) or set "
                             "lossconfig discriminator: null and gradient_clip_val: 0")

    def training_losses(self, x: torch.Tensor, generator: torch.Generator, step: int
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Summed generator and discriminator loss of images x [B, C, H, W] at generator step `step`, with
        its detached terms; the posterior sample is drawn from `generator`."""
        loss_fn = self._require_loss()
        recon, posterior = self(x, generator=generator)
        loss, logs = loss_fn.generator_loss(x, recon, posterior, step, self.decoder.last_layer)
        if loss_fn.discriminator is not None:
            disc_loss, disc_logs = loss_fn.discriminator_loss(x, recon, step)
            loss, logs = loss + disc_loss, {**logs, **disc_logs}
        return loss, logs

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss_fn = self._require_loss()
        optimizers = self.optimizers()
        opt_ae, opt_disc = optimizers if isinstance(optimizers, list) else (optimizers, None)
        x = self.get_input(batch)
        step = self.global_step
        accumulate = self.hparams.accumulate_grad_batches
        loss, logs = self.training_losses(x, self.micro_batch_generator(batch_idx % accumulate), step)
        self.manual_backward(loss / accumulate)
        if (batch_idx + 1) % accumulate == 0 or (self._trainer is not None and self._trainer.is_last_batch):
            schedulers = self.lr_schedulers()
            sched_ae, sched_disc = schedulers if isinstance(schedulers, list) else (schedulers, None)
            opt_ae.step()
            opt_ae.zero_grad(set_to_none=True)
            sched_ae.step()
            if opt_disc is not None:
                if loss_fn.gan_active(step):
                    # Stepped through the strategy (precision plugin, clipping hook) but not through the
                    # LightningOptimizer, which would count it as a second global step.
                    self.trainer.strategy.optimizer_step(opt_disc.optimizer, closure=lambda: None, model=self)
                    sched_disc.step()  # the discriminator's warm-up starts when it does
                opt_disc.zero_grad(set_to_none=True)
        self.log_dict({f"train/{name}": value for name, value in logs.items()}, on_step=True, on_epoch=False,
                      batch_size=x.shape[0])
        return loss.detach()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.hparams.gradient_clip_val > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.gradient_clip_val,
                                gradient_clip_algorithm="norm")

    def configure_optimizers(self):
        hp = self.hparams
        loss_fn = self._require_loss()
        ae_params = [p for name, p in self.named_parameters() if not name.startswith("loss.")]
        optimizers = [build_adamw(ae_params, hp.learning_rate, hp.adam_betas, hp.weight_decay, hp.optimizer)]
        if loss_fn.discriminator is not None:
            optimizers.append(build_adamw(loss_fn.discriminator.parameters(), hp.disc_learning_rate or hp.learning_rate,
                                          hp.adam_betas, hp.weight_decay, hp.optimizer))
        total = self._trainer.max_steps if self._trainer is not None and self._trainer.max_steps > 0 else 0
        factor = warmup_decay(hp.warmup_steps, total, hp.lr_decay, hp.min_lr_ratio)
        names = ["lr/autoencoder", "lr/discriminator"]
        schedulers = [{"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor), "interval": "step",
                       "name": name} for opt, name in zip(optimizers, names)]
        return optimizers, schedulers

    # --------------------------------------------------------------------------------- validation
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = self.get_input(batch)
        recon, posterior = self(x, sample_posterior=False)
        recon = recon.float().clamp(-1.0, 1.0)
        x = x.float()
        metrics = {"val/l1": (recon - x).abs().mean(), "val/kl": posterior.kl().float().mean() / x[0].numel(),
                   "val/psnr": psnr_per_volume(recon, x, data_range=DATA_RANGE).mean()}
        ssim = ssim_per_image(recon, x, data_range=DATA_RANGE)  # [B, C]: one value per slice
        metrics["val/ssim"] = ssim.mean()
        metrics.update({f"val/ssim_slice{k}": ssim[:, k].mean() for k in range(ssim.shape[1])})
        self.log_dict({k: v.float() for k, v in metrics.items()}, on_step=False, on_epoch=True, sync_dist=True,
                      batch_size=x.shape[0])
