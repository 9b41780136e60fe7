"""Write phantom eyes to disk in the layouts the readers understand.

APTOS-2024 layout (`layout="aptos"`), cases 0..n_train-1 for training, the rest for validation:

    <out>/train/CF/<PID>-<num><eye>.jpg
    <out>/train/OCT/<PID>_<num><eye>/<PID>_<num><eye>_{0..5}.jpg
    <out>/train/train.csv            PID, CF_path, OCT_path
    <out>/val/CF/<PID>-<num><eye>.jpg
    <out>/val/val.csv                PID, CF_path (no OCT)

Folder layout (`layout="folder"`, as read by `eyeoct.data.folder`): every case has OCT,

    <out>/<PID>-<num><eye>/cf.jpg and oct_{0..5}.png

PID is six digits shared by two consecutive indices (a patient may have two eyes, use patient
separator "-" for the folder layout), <num> is the phantom index, <eye> the phantom's laterality.
A share of the cases (`two_panel_fraction`) is exported Heidelberg-style: every slice file holds an
infrared fundus panel (same size as the B-scan, with the scan line drawn) left of the B-scan.
`<out>/phantom_meta.jsonl` holds one line per case: its name, split, two_panel flag and `meta`.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from eyeoct.case_layout import case_prefix, slice_paths
from eyeoct.data.folder import CF_STEM, OCT_PREFIX
from eyeoct.data.phantom.case import PhantomCase, PhantomConfig, render_case
from eyeoct.data.phantom.cf import render_infrared
from eyeoct.data.phantom.oct import SLICE_ANGLES_DEG
from eyeoct.progress import progress_bar

logger = logging.getLogger(__name__)

LAYOUTS = ("aptos", "folder")
INFRARED_FIELD_HEIGHT_MM = 9.0  # a 30 degree SLO field
JPEG_QUALITY = 95


@dataclass(frozen=True)
class CaseName:
    """File names of one exported phantom eye."""

    pid: str
    cf_stem: str
    oct_name: str


def case_name(seed: int, index: int, laterality: str) -> CaseName:
    pid = f"{(seed % 100) * 10000 + index // 2:06d}"
    return CaseName(pid, f"{pid}-{index}{laterality}", f"{pid}_{index}{laterality}")


def _prepare_output(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"output path {out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise FileExistsError(f"refusing to write into the non-empty folder {out_dir}; give a new or empty folder")
    out_dir.mkdir(parents=True, exist_ok=True)


def _two_panel_cases(seed: int, n: int, fraction: float) -> set[int]:
    """Indices exported as two-panel images: a fixed share, spread by a seeded permutation."""
    order = np.random.default_rng([seed, n, 7]).permutation(n)
    return set(order[: int(round(fraction * n))].tolist())


def _scan_line(panel: np.ndarray, angle_deg: float, length_px: float) -> np.ndarray:
    """Draw the B-scan position as a bright line through the panel centre (where the fovea is)."""
    out = panel.copy()
    h, w = out.shape
    a = np.deg2rad(angle_deg)
    t = np.linspace(-length_px / 2, length_px / 2, int(length_px) * 2 + 2)
    cols = np.round((w - 1) / 2 + t * np.cos(a)).astype(int)
    rows = np.round((h - 1) / 2 - t * np.sin(a)).astype(int)
    ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    out[rows[ok], cols[ok]] = 235
    return out


def two_panel_slices(case: PhantomCase, config: PhantomConfig, seed: int, index: int) -> np.ndarray:
    """Heidelberg-style exports [6, H, 2W]: infrared fundus panel (with the scan line) | B-scan."""
    _, h, w = case.oct.shape
    mm_per_px = INFRARED_FIELD_HEIGHT_MM / h
    infrared = render_infrared(case.geometry, h, w, mm_per_px * w, np.random.default_rng([seed, index, 8]))
    length_px = config.scan_length_mm / mm_per_px
    return np.stack([np.concatenate([_scan_line(infrared, angle, length_px), bscan], axis=1)
                     for angle, bscan in zip(SLICE_ANGLES_DEG, case.oct)])


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if path.suffix == ".jpg":
        image.save(path, quality=JPEG_QUALITY)
    else:
        image.save(path)


def write_phantom_dataset(out_dir: str | Path, n: int, layout: str = "aptos", seed: int = 0,
                          config: PhantomConfig | None = None, val_fraction: float = 0.2,
                          two_panel_fraction: float = 0.3, progress: bool = True) -> dict:
    """Render phantom eyes 0..n-1 of `seed` into `out_dir` (must be new or empty); returns counts.

    `progress` shows a bar (on a terminal only)."""
    out_dir = Path(out_dir)
    config = config or PhantomConfig()
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if n < 1:
        raise ValueError(f"number of cases must be >= 1, got {n}")
    if not 0.0 <= val_fraction < 1.0 or not 0.0 <= two_panel_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1) and two_panel_fraction in [0, 1], got "
                         f"{val_fraction} and {two_panel_fraction}")
    _prepare_output(out_dir)
    n_train = n - int(round(val_fraction * n)) if layout == "aptos" else n
    two_panel = _two_panel_cases(seed, n_train, two_panel_fraction)
    rows = {"train": ["PID,CF_path,OCT_path"], "val": ["PID,CF_path"]}
    counts = {"train": 0, "val": 0, "two_panel": 0}
    with open(out_dir / "phantom_meta.jsonl", "w") as meta_file:
        for index in progress_bar(range(n), desc="phantom eyes", unit="eye", quiet=not progress):
            case = render_case(seed, index, config)
            name = case_name(seed, index, case.meta["laterality"])
            split = "train" if index < n_train else "val"
            is_two_panel = split == "train" and index in two_panel
            slices = two_panel_slices(case, config, seed, index) if is_two_panel else case.oct
            counts["two_panel"] += int(is_two_panel)
            if layout == "folder":
                _save(case.cf, out_dir / name.cf_stem / f"{CF_STEM}.jpg")
                for path, bscan in zip(slice_paths(out_dir / name.cf_stem, OCT_PREFIX, "png"), slices):
                    _save(bscan, path)
            else:
                _save(case.cf, out_dir / split / "CF" / f"{name.cf_stem}.jpg")
                if split == "train":
                    folder = out_dir / "train" / "OCT" / name.oct_name
                    for path, bscan in zip(slice_paths(folder, case_prefix(name.oct_name), "jpg"), slices):
                        _save(bscan, path)
                    rows["train"].append(f"{name.pid},{name.cf_stem}.jpg,{name.oct_name}")
                else:
                    rows["val"].append(f"{name.pid},{name.cf_stem}.jpg")
            counts[split] += 1
            record = {"name": name.cf_stem, "split": split, "two_panel": is_two_panel, "meta": case.meta}
            meta_file.write(json.dumps(record) + "\n")
            logger.debug("phantom case %d/%d %s (%s, %s)", index + 1, n, name.cf_stem, split, case.meta["pathology"])
    if layout == "aptos":
        for split, lines in rows.items():
            if len(lines) > 1:
                (out_dir / split / f"{split}.csv").write_text("\n".join(lines) + "\n")
    logger.info("wrote %d phantom cases (%s) to %s", n, counts, out_dir)
    return counts
