"""The one rule for the device a command runs on when the user does not name one, and what the CPU can do."""
from __future__ import annotations

import torch


def resolve_device(name: str | None) -> str:
    """`auto` (or None, or empty): `cuda` when a GPU is visible, else `cpu`; anything else as given."""
    if name in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN has bf16 kernels for this CPU (AVX512-BF16 or AMX); elsewhere bf16 is emulated, slowly."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
