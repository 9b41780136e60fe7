"""Image and video metrics of EyeOCT (protocols in DESIGN.md, "Metric protocols")."""
from eyeoct.metrics.psnr import psnr_per_image, psnr_per_volume
from eyeoct.metrics.ssim import ssim_per_image

__all__ = ["ssim_per_image", "psnr_per_volume", "psnr_per_image"]
