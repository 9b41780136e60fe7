"""Latent-diffusion models (LightningModules) and their export helpers."""
