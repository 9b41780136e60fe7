"""Image and video metrics of EyeOCT (protocols in DESIGN.md, "Metric protocols").

Pixel metrics are imported directly (SSIM and PSNR live in `ldm.metrics`); the network-based ones (FVD, FID/KID, LPIPS) are loaded on
first access so that `from eyeoct.metrics import ssim_per_image` stays light.
"""
from importlib import import_module

from eyeoct.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features
from eyeoct.metrics.msssim import ms_ssim_per_image
from eyeoct.metrics.radial import radial_inconsistency
from eyeoct.metrics.weights import sha256_file
from ldm.metrics import psnr_per_image, psnr_per_volume, ssim_per_image  # the generic pixel metrics

_LAZY = {
    "InceptionI3D": "eyeoct.metrics.i3d",
    "I3DFeatures": "eyeoct.metrics.fvd", "compute_fvd": "eyeoct.metrics.fvd", "expand_frames": "eyeoct.metrics.fvd",
    "InceptionFeatures": "eyeoct.metrics.inception", "kernel_inception_distance": "eyeoct.metrics.inception",
    "LPIPS": "eyeoct.metrics.lpips",
}

__all__ = [
    "ssim_per_image", "psnr_per_volume", "psnr_per_image", "ms_ssim_per_image", "radial_inconsistency",
    "feature_statistics", "frechet_distance", "frechet_distance_from_features", "sha256_file", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'eyeoct.metrics' has no attribute {name!r}")
