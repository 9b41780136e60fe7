"""Generic latent-diffusion parts: autoencoder, UNet, attention, noise schedule, DDIM sampler, EMA."""
