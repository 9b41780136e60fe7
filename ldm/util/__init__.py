"""Generic helpers of the latent-diffusion parts: config blocks, atomic files, checkpoint reading."""
