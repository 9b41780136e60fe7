"""Image and video metrics of EyeOCT (protocols in DESIGN.md, "Metric protocols")."""
from eyeoct.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from eyeoct.metrics.msssim import ms_ssim_per_image
from eyeoct.metrics.psnr import psnr_per_image, psnr_per_volume
from eyeoct.metrics.radial import radial_inconsistency
from eyeoct.metrics.ssim import ssim_per_image
from eyeoct.metrics.weights import sha256_file

__all__ = [
    "ssim_per_image", "psnr_per_volume", "psnr_per_image", "ms_ssim_per_image", "radial_inconsistency",
    "feature_statistics", "frechet_distance", "frechet_distance_from_features", "sha256_file",
]
