"""Diagonal Gaussian posterior of the KL autoencoder."""
from __future__ import annotations

import torch

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


class DiagonalGaussianDistribution:
    """N(mean, diag(exp(logvar))) from moments [B, 2*C, ...] split along dim 1 into mean and log-variance.

    The statistics are float32 whatever the autocast dtype of the encoder (samples and the KL are reduced in
    float32); the log-variance is clamped to [-30, 20] so exp() stays finite.
    """

    def __init__(self, moments: torch.Tensor):
        if moments.dim() < 2 or moments.shape[1] % 2:
            raise ValueError(f"moments must be [B, 2*C, ...] with an even channel count, got {tuple(moments.shape)}")
        self.mean, logvar = torch.chunk(moments.float(), 2, dim=1)
        self.logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def _event_dims(self) -> list[int]:
        return list(range(1, self.mean.dim()))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample mean + std * eps (eps drawn from ``generator`` if given)."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        """The most likely latent (the mean)."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per sample [B], summed over all non-batch dims."""
        return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=self._event_dims())
