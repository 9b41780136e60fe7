"""Local pretrained weights for the metric networks: path resolution, SHA-256, loading.

Nothing is ever downloaded. A missing file is an error naming the expected file, the
environment variable that can point to it and where such files are published.
"""
from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ldm.util.checkpoints import read_state_dict


@dataclass(frozen=True)
class WeightsSpec:
    """What a metric network expects: a file name, an env var and where such files come from."""

    metric: str
    expected_file: str
    env_var: str
    source: str


I3D_WEIGHTS = WeightsSpec(
    "FVD", "i3d_torchscript.pt", "EYEOCT_I3D_WEIGHTS",
    "the TorchScript Kinetics-400 I3D released with StyleGAN-V (universome/stylegan-v, "
    "'i3d_torchscript.pt'), or a state dict of eyeoct.metrics.i3d.InceptionI3D (its module names "
    "follow the pytorch-i3d port, so that port's Kinetics-400 'rgb_imagenet.pt' should load; not verified here)")
INCEPTION_WEIGHTS = WeightsSpec(
    "FID/KID", "inception_v3_google-0cc3c7bd.pth", "EYEOCT_INCEPTION_WEIGHTS",
    "torchvision's ImageNet Inception-v3 state dict ('inception_v3_google-0cc3c7bd.pth' from the "
    "torchvision model zoo), or the TorchScript 'inception-2015-12-05.pt' of StyleGAN2-ADA/StyleGAN-V")
LPIPS_BACKBONE_WEIGHTS = WeightsSpec(
    "LPIPS", "alexnet-owt-7be5be79.pth", "EYEOCT_LPIPS_BACKBONE",
    "torchvision's ImageNet AlexNet ('alexnet-owt-7be5be79.pth') or VGG16 ('vgg16-397923af.pth') state dict")
LPIPS_LINEAR_WEIGHTS = WeightsSpec(
    "LPIPS", "alex.pth", "EYEOCT_LPIPS_LINEAR",
    "the linear-layer weights of the LPIPS release (richzhang/PerceptualSimilarity, "
    "'lpips/weights/v0.1/alex.pth' or 'vgg.pth')")


def resolve_weights(path: str | os.PathLike | None, spec: WeightsSpec) -> Path:
    """Return the weights file from `path` or, if None, from the spec's environment variable."""
    chosen = path if path not in (None, "") else os.environ.get(spec.env_var, "")
    if not chosen:
        raise FileNotFoundError(
            f"{spec.metric} needs local weights '{spec.expected_file}': pass its path explicitly or set "
            f"{spec.env_var}. Such files come from {spec.source}. Nothing is downloaded.")
    chosen = Path(chosen).expanduser()
    if not chosen.is_file():
        raise FileNotFoundError(
            f"{spec.metric} weights file not found: {chosen} (expected '{spec.expected_file}'; "
            f"such files come from {spec.source}). Nothing is downloaded.")
    return chosen


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (reported with every FVD/FID so numbers can be traced to weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_torchscript(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (a zip holding compiled code), False for a plain state dict."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def load_into(module: torch.nn.Module, path: str | os.PathLike, strip_prefix: str = "module.") -> torch.nn.Module:
    """Load a state dict file into `module` strictly; mismatching keys give an error naming the file."""
    state = {k[len(strip_prefix):] if k.startswith(strip_prefix) else k: v
             for k, v in read_state_dict(path, f"a state dict of {type(module).__name__}").items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: state dict does not fit {type(module).__name__}: "
                         f"missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                         f"unexpected keys {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
    return module


def load_network(path: str | os.PathLike, build: Callable[[], torch.nn.Module],
                 device: torch.device) -> tuple[torch.nn.Module, bool]:
    """`(network, is_torchscript)` in eval mode on `device`: a TorchScript file as is, else a state dict
    loaded into `build()`."""
    if is_torchscript(path):
        with warnings.catch_warnings():  # torch marks jit.load deprecated; the file is TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location=device).eval(), True
    return load_into(build(), path).to(device).eval(), False
