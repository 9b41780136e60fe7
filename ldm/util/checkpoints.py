"""The one reader of local weight files: safetensors, or torch files loaded with ``weights_only=True``."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file

STATE_DICT_KEY = "state_dict"  # the wrapper of Lightning checkpoints (and of many released files)


def read_state_dict(path: str | os.PathLike, expected: str) -> dict[str, torch.Tensor]:
    """Tensors by name from the local file `path`; a ``{"state_dict": {...}}`` wrapper is unwrapped.

    `.safetensors` files are read as such, anything else with ``torch.load(weights_only=True)`` (pickled
    objects and TorchScript archives are refused). Nothing is downloaded. `expected` says what the file
    should be and where such files come from; every error names the file and repeats it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}. Expected {expected}; nothing is downloaded.")
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a TorchScript archive, a pickled object or a damaged file
        raise ValueError(f"cannot read {path} as a safetensors file or a plain state dict with weights_only=True "
                         f"(convert it to safetensors): {err}. Expected {expected}.") from err
    if isinstance(state, dict) and isinstance(state.get(STATE_DICT_KEY), dict):
        state = state[STATE_DICT_KEY]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (mapping of names to tensors), got "
                         f"{type(state).__name__}. Expected {expected}.")
    return state
