"""Pixel metrics of image stacks: SSIM (skimage's protocol, per 2-D image) and PSNR (per volume or image)."""
from ldm.metrics.psnr import psnr_per_image, psnr_per_volume
from ldm.metrics.ssim import ssim_per_image

__all__ = ["ssim_per_image", "psnr_per_volume", "psnr_per_image"]
