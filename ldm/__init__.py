"""Generic latent-diffusion parts: autoencoder, UNet, attention, noise schedule, samplers (DDIM, DPM-Solver++), EMA,
pixel metrics (`ldm.metrics`) and helpers (`ldm.util`: config blocks, atomic files, weight files). Imports neither
`cldm` nor the application (tests/test_layering.py checks it)."""
