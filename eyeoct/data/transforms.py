"""Preprocessing of uint8 arrays (fundus field-of-view crop, resize) and the uint8 <-> [-1, 1] tensor mappings."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from eyeoct.data.fundus_fov import crop_to_fov, find_fov


def center_crop_square(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an [h,w,...] array."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top:top + side, left:left + side]


def resize_uint8(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of a uint8 [h,w] or [h,w,3] array (antialiased when shrinking); no-op at the same size."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC), dtype=np.uint8)


def crop_cf_square(rgb: np.ndarray) -> np.ndarray:
    """The square framing the fundus disc of uint8 [h,w,3] `rgb` (black where the disc runs past the image
    border; see `eyeoct.data.fundus_fov`), or its centred square where no disc is found."""
    fov = find_fov(rgb)
    return center_crop_square(rgb) if fov is None else crop_to_fov(rgb, fov)


def preprocess_cf(rgb: np.ndarray, size: int) -> np.ndarray:
    """CF photo uint8 [h,w,3] -> the square around its field of view, resized to uint8 [size,size,3]."""
    return resize_uint8(crop_cf_square(rgb), size, size)


def preprocess_oct(slices: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Six B-scans uint8 [H_k,W_k] (sizes may differ) -> uint8 [6,height,width]."""
    return np.stack([resize_uint8(s, height, width) for s in slices])


# x/127.5 - 1 for every uint8 value, in float32 (a table lookup is ~10x faster than torch arithmetic here)
_UNIT_TABLE = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


def uint8_to_unit(array: np.ndarray) -> torch.Tensor:
    """uint8 array -> float32 tensor in [-1, 1] (x/127.5 - 1)."""
    if array.dtype != np.uint8:
        raise TypeError(f"expected a uint8 array, got {array.dtype}")
    return torch.from_numpy(_UNIT_TABLE[array])


def unit_to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """Tensor in [-1, 1] (values outside are clipped) -> uint8 array, the inverse of `x/127.5 - 1`."""
    return ((tensor.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def cf_to_tensor(cf: np.ndarray) -> torch.Tensor:
    """uint8 [h,w,3] -> float32 [3,h,w] in [-1, 1]."""
    return uint8_to_unit(np.ascontiguousarray(cf.transpose(2, 0, 1)))

