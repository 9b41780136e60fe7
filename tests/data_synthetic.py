"""Synthetic images and APTOS-style folders for the data tests (written with PIL, no real data)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


def fundus_panel(height: int, width: int, seed: int) -> np.ndarray:
    """An isotropic, textured grey image standing in for an infrared fundus (SLO) panel."""
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.normal(size=(height, width)), sigma=max(1.0, height / 24))
    texture = (texture - texture.mean()) / (texture.std() + 1e-8)
    return np.clip(140 + 35 * texture + rng.normal(0, 6, (height, width)), 0, 255).astype(np.uint8)


def bscan_panel(height: int, width: int, seed: int) -> np.ndarray:
    """A layered image standing in for an OCT B-scan: dark vitreous, bright curved layers, speckle."""
    rng = np.random.default_rng(seed)
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    surface = height * (0.3 + 0.05 * np.sin(np.pi * cols / width))
    depth = rows - surface
    profile = 150 * np.exp(-((depth - 0.05 * height) / (0.04 * height)) ** 2) + 90 * (depth > 0) * np.exp(-depth / (0.25 * height))
    return np.clip(20 + profile + rng.normal(0, 8, (height, width)), 0, 255).astype(np.uint8)


def colour_fundus(size: int, seed: int) -> np.ndarray:
    """An RGB uint8 photo-like image [size, size+size//4, 3] (wider than tall, as fundus cameras are)."""
    rng = np.random.default_rng(seed)
    height, width = size, size + size // 4
    base = gaussian_filter(rng.normal(size=(height, width, 3)), sigma=(2, 2, 0))
    return np.clip(110 + 40 * base + np.array([60, 0, -50]), 0, 255).astype(np.uint8)


def save(array: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def write_aptos_layout(root: Path, patients: int = 3, eyes: tuple[str, ...] = ("L", "R"), cf_size: int = 40,
                       oct_hw: tuple[int, int] = (32, 48), two_panel: bool = True, ext: str = "png") -> Path:
    """Write `<root>/train.csv`, `CF/` and `OCT/` for `patients` x `eyes` cases; returns the CSV path."""
    lines = ["PID,CF_path,OCT_path"]
    for p in range(patients):
        for e, eye in enumerate(eyes):
            seed = 100 * p + e
            pid = f"{p:06d}"
            stem = f"{pid}-{60 + p}{eye}"
            oct_name = f"{pid}_{eye}"
            save(colour_fundus(cf_size, seed), root / "CF" / f"{stem}.{ext}")
            for k in range(6):
                bscan = bscan_panel(*oct_hw, seed=seed * 10 + k)
                image = np.concatenate([fundus_panel(oct_hw[0], oct_hw[0], seed + k), bscan], axis=1) if two_panel else bscan
                save(image, root / "OCT" / oct_name / f"{oct_name}_{k}.{ext}")
            lines.append(f"{pid},{stem}.{ext},{oct_name}")
    csv = root / "train.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


def bscan_truth(root: Path, csv: Path, oct_hw: tuple[int, int] = (32, 48)) -> dict[str, np.ndarray]:
    """The B-scan panels `write_aptos_layout` drew, per CF stem, as uint8 [6,H,W]."""
    truth = {}
    for line in csv.read_text().splitlines()[1:]:
        pid, cf_name, oct_name = line.split(",")
        p, eye = int(pid), oct_name[-1]
        seed = 100 * p + "LR".index(eye)
        truth[Path(cf_name).stem] = np.stack([bscan_panel(*oct_hw, seed=seed * 10 + k) for k in range(6)])
    return truth
