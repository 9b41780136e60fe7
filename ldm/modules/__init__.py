"""Building blocks (layers, losses, distributions) of the latent-diffusion models."""
