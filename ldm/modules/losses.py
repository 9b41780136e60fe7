"""Training loss of the KL autoencoder: reconstruction + KL + optional perceptual and PatchGAN terms.

Scales: the reconstruction terms are per-element means and the KL is per input element (KL summed
over the latent, divided by C*H*W of the input), so ``kl_weight`` has the meaning it has with
summed losses (1e-6 is the usual latent-diffusion value). The adversarial term is weighted
adaptively as in VQGAN (Esser et al. 2021): ``||grad rec|| / ||grad g||`` at the decoder's last layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.func import functional_call

from ldm.metrics import ssim_per_image
from ldm.modules.discriminator import PatchDiscriminator, hinge_discriminator_loss, hinge_generator_loss
from ldm.modules.distributions import DiagonalGaussianDistribution
from ldm.util.config import instantiate_from_config, validated

DATA_RANGE = 2.0  # images live in [-1, 1]
MAX_ADAPTIVE_WEIGHT = 1e4


def _slice_lpips(lpips: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean LPIPS over the channels of [B, C, H, W] images, each channel scored as a grayscale image."""
    b, c, h, w = x.shape
    return lpips(x.float().reshape(b * c, h, w), y.float().reshape(b * c, h, w)).mean()


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The loss's ``discriminator`` block: the generator step from which the GAN terms are used
    (``start_step``), the factor on the adaptive weight (``weight``) and the PatchDiscriminator's size."""

    start_step: int
    weight: float = 0.5
    channels: int = 64
    num_layers: int = 3
    num_groups: int = 32


class AutoencoderLoss(nn.Module):
    """Generator and discriminator objectives of the autoencoder.

    Args:
        image_channels: channels of the images (the discriminator's input), set by the autoencoder.
        l1_weight, ssim_weight: weights of mean |x - x'| and of 1 - SSIM (skimage protocol, per slice).
        kl_weight: weight of the KL per input element.
        perceptual_weight: weight of a perceptual distance such as LPIPS (each channel scored as a grayscale
            image); > 0 needs ``perceptual``, the target/params block of a module mapping two image batches
            [N, H, W] in [-1, 1] to distances [N] (the application names its LPIPS and the local weights).
        discriminator: None (no GAN) or a `DiscriminatorConfig` block (``start_step``, ``weight``,
            ``channels``, ``num_layers``, ``num_groups``).
    """

    def __init__(self, *, image_channels: int = 6, l1_weight: float = 1.0, ssim_weight: float = 0.0,
                 kl_weight: float = 1e-6, perceptual_weight: float = 0.0, perceptual: Mapping[str, Any] | None = None,
                 discriminator: dict[str, Any] | None = None):
        super().__init__()
        self.l1_weight, self.ssim_weight, self.kl_weight = l1_weight, ssim_weight, kl_weight
        self.perceptual_weight = perceptual_weight
        self.perceptual = None
        if perceptual_weight > 0:
            if perceptual is None:
                raise ValueError("perceptual_weight > 0 needs a `perceptual:` target/params block (a module "
                                 "scoring image batches [N, H, W] in [-1, 1] as distances [N], e.g. an LPIPS)")
            self.perceptual = instantiate_from_config(perceptual)
        self.discriminator: PatchDiscriminator | None = None
        self.disc_start, self.disc_weight = 0, 0.0
        if discriminator is not None:
            disc = validated(DiscriminatorConfig, discriminator, "lossconfig discriminator")
            self.disc_start, self.disc_weight = int(disc.start_step), float(disc.weight)
            self.discriminator = PatchDiscriminator(in_channels=image_channels, channels=disc.channels,
                                                    num_layers=disc.num_layers, num_groups=disc.num_groups)

    def gan_active(self, global_step: int) -> bool:
        """Whether the adversarial terms are used at this generator step."""
        return self.discriminator is not None and global_step >= self.disc_start

    def reconstruction_terms(self, x: torch.Tensor, recon: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted reconstruction loss ``rec`` (scalar, float32) and its unweighted parts."""
        terms = {"l1": (recon.float() - x.float()).abs().mean()}
        rec = self.l1_weight * terms["l1"]
        if self.ssim_weight > 0:
            terms["ssim"] = ssim_per_image(recon, x, data_range=DATA_RANGE, dtype=torch.float32).mean()
            rec = rec + self.ssim_weight * (1.0 - terms["ssim"])
        if self.perceptual is not None:
            terms["perceptual"] = _slice_lpips(self.perceptual, recon, x)
            rec = rec + self.perceptual_weight * terms["perceptual"]
        terms["rec"] = rec
        return terms

    def generator_loss(self, x: torch.Tensor, recon: torch.Tensor, posterior: DiagonalGaussianDistribution,
                       global_step: int, last_layer: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Loss of encoder and decoder and a dict of detached terms for logging.

        ``last_layer`` (the decoder's final weight) is needed once the GAN is active.
        """
        terms = self.reconstruction_terms(x, recon)
        terms["kl"] = posterior.kl().mean() / x[0].numel()
        loss = terms["rec"] + self.kl_weight * terms["kl"]
        if self.gan_active(global_step):
            # The discriminator's parameters are used detached: the generator loss must not train it.
            frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
            terms["g"] = hinge_generator_loss(functional_call(self.discriminator, frozen, (recon,)))
            terms["d_weight"] = self.disc_weight * self.adaptive_weight(terms["rec"], terms["g"], last_layer)
            loss = loss + terms["d_weight"] * terms["g"]
        terms["total"] = loss
        return loss, {name: value.detach() for name, value in terms.items()}

    @staticmethod
    def adaptive_weight(rec: torch.Tensor, g: torch.Tensor, last_layer: torch.Tensor | None) -> torch.Tensor:
        """||d rec / d last_layer|| / (||d g / d last_layer|| + 1e-4), clamped to [0, 1e4], no gradient."""
        if last_layer is None:
            raise ValueError("the adaptive GAN weight needs the decoder's last layer weight")
        rec_grad = torch.autograd.grad(rec, last_layer, retain_graph=True)[0]
        g_grad = torch.autograd.grad(g, last_layer, retain_graph=True)[0]
        weight = rec_grad.norm() / (g_grad.norm() + 1e-4)
        return weight.clamp(0.0, MAX_ADAPTIVE_WEIGHT).detach()

    def discriminator_loss(self, x: torch.Tensor, recon: torch.Tensor,
                           global_step: int) -> tuple[torch.Tensor, dict]:
        """Hinge loss of the discriminator on real ``x`` and detached ``recon``.

        Before ``start_step`` it is a zero that still touches every discriminator parameter, so DDP
        (without find_unused_parameters) sees all parameters used in each backward.
        """
        if self.discriminator is None:
            raise ValueError("discriminator_loss called but the loss has no discriminator configured")
        if not self.gan_active(global_step):
            return sum(p.sum() for p in self.discriminator.parameters()) * 0.0, {}
        logits_real = self.discriminator(x.detach())
        logits_fake = self.discriminator(recon.detach())
        loss = hinge_discriminator_loss(logits_real, logits_fake)
        logs = {"d": loss, "logits_real": logits_real.mean(), "logits_fake": logits_fake.mean()}
        return loss, {name: value.detach() for name, value in logs.items()}
