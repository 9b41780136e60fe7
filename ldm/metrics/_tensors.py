"""Input checks shared by the image metrics."""
from __future__ import annotations

import numpy as np
import torch


def as_float_pair(pred, target, dtype: torch.dtype | None, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return pred/target as tensors of one floating dtype on pred's device.

    Numpy arrays are accepted. `dtype=None` means float64 (the reference path).
    """
    pred = torch.as_tensor(np.asarray(pred)) if not isinstance(pred, torch.Tensor) else pred
    target = torch.as_tensor(np.asarray(target)) if not isinstance(target, torch.Tensor) else target
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    dtype = torch.float64 if dtype is None else dtype
    if not dtype.is_floating_point:
        raise ValueError(f"{name}: compute dtype must be floating point, got {dtype}")
    return pred.to(dtype=dtype), target.to(device=pred.device, dtype=dtype)


def check_data_range(data_range, name: str) -> float:
    """The explicit dynamic range R (e.g. 255 for uint8, 2 for [-1,1]); must be > 0."""
    if data_range is None or not float(data_range) > 0:
        raise ValueError(f"{name}: data_range must be given explicitly and be > 0 "
                         f"(255 for uint8, 1 for [0,1], 2 for [-1,1]); got {data_range!r}")
    return float(data_range)
