"""Generic latent-diffusion parts: autoencoder, UNet, attention, noise schedule, samplers (DDIM, DPM-Solver++), EMA."""
