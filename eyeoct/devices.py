"""The one rule for the device a command runs on when the user does not name one."""
from __future__ import annotations

import torch


def resolve_device(name: str | None) -> str:
    """`auto` (or None, or empty): `cuda` when a GPU is visible, else `cpu`; anything else as given."""
    if name in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
