"""Ground-truth sources (a volume folder or an APTOS CSV), their CF photos, case matching and the resize rule."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from eyeoct.case_layout import find_image_file
from eyeoct.volume_io import list_volume_cases, read_volume

logger = logging.getLogger(__name__)

RESIZE_RULE = ("predictions are resized to the ground-truth size with bilinear interpolation "
               "(antialias on, align_corners off) on [0,255] floats, then rounded to uint8")


class CaseMismatchError(ValueError):
    """Prediction and ground-truth case sets differ."""


def resize_volume(volume: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [S,H,W] -> uint8 [S,*size] by RESIZE_RULE; returned unchanged if already that size."""
    if tuple(volume.shape[-2:]) == tuple(size):
        return volume
    x = torch.from_numpy(np.ascontiguousarray(volume)).float().unsqueeze(0)
    x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return x[0].round().clamp(0, 255).to(torch.uint8).numpy()


class GroundTruth:
    """Case id -> loader of the uint8 [6,H,W] ground-truth volume, and the CF photo of each case when known."""

    def __init__(self, source: str, loaders: dict[str, Callable[[], np.ndarray]],
                 cf_paths: dict[str, Path] | None = None):
        self.source = source
        self._loaders = loaders
        self.cf_paths = dict(cf_paths or {})

    @property
    def case_ids(self) -> list[str]:
        return sorted(self._loaders)

    def load(self, case_id: str) -> np.ndarray:
        return self._loaders[case_id]()

    @classmethod
    def from_path(cls, path: str | Path, data_root: str | Path | None = None) -> "GroundTruth":
        """A folder in the submission layout, or an APTOS CSV (with OCT_path) read by the data package."""
        path = Path(path)
        if path.is_dir():
            return cls(str(path), {stem: (lambda d=path / stem: read_volume(d)) for stem in list_volume_cases(path)})
        if path.is_file() and path.suffix.lower() == ".csv":
            return cls._from_aptos_csv(path, data_root)
        raise FileNotFoundError(f"ground truth not found or not a folder/CSV: {path} (expected a folder "
                                f"<gt>/<stem>/<stem>_{{0..5}}.<ext> or an APTOS CSV with columns PID, CF_path, OCT_path)")

    @classmethod
    def _from_aptos_csv(cls, csv_path: Path, data_root) -> "GroundTruth":
        from eyeoct.data.aptos import load_aptos_cases
        from eyeoct.data.images import read_oct_slice

        def loader(case) -> Callable[[], np.ndarray]:
            def load() -> np.ndarray:
                slices = [read_oct_slice(p) for p in case.oct_paths]
                size = slices[0].shape
                if any(s.shape != size for s in slices):
                    logger.warning("case %s: GT slices differ in size %s; resized to slice 0's %s",
                                   case.case_id, [s.shape for s in slices], size)
                return np.stack([resize_volume(s[None], size)[0] for s in slices])
            return load

        cases = load_aptos_cases(csv_path, data_root=data_root, require_oct=True)
        return cls(str(csv_path), {case.case_id: loader(case) for case in cases},
                   {case.case_id: case.cf_path for case in cases})


def find_cf_images(folder: str | Path, case_ids: list[str]) -> dict[str, Path]:
    """`<folder>/<case id>.<png|jpg|...>` for every case that has one (a missing folder is an error)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"CF folder not found: {folder} (expected <case id>.png/.jpg files)")
    found = {}
    for case_id in case_ids:
        candidate = find_image_file(folder / case_id)
        if candidate is not None:
            found[case_id] = candidate
    missing = [c for c in case_ids if c not in found]
    if missing:
        logger.warning("%d of %d cases have no CF photo in %s (e.g. %s): their example rows start at the "
                       "ground truth", len(missing), len(case_ids), folder, ", ".join(missing[:3]))
    return found


def match_cases(pred_ids: list[str], gt_ids: list[str], pred_source: str, gt_source: str) -> list[str]:
    """Sorted common case ids; any prediction without ground truth or vice versa is an error listing them."""
    pred_set, gt_set = set(pred_ids), set(gt_ids)
    missing, extra = sorted(gt_set - pred_set), sorted(pred_set - gt_set)
    if missing or extra:
        def show(ids):
            return ", ".join(ids[:20]) + (f" ... ({len(ids)} in all)" if len(ids) > 20 else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} ground-truth case(s) without prediction in {pred_source}: {show(missing)}")
        if extra:
            parts.append(f"{len(extra)} predicted case(s) not in the ground truth {gt_source}: {show(extra)}")
        raise CaseMismatchError("; ".join(parts))
    if not pred_set:
        raise CaseMismatchError(f"no cases found in {pred_source} (expected <stem>/<stem>_{{0..5}}.<ext> folders)")
    return sorted(pred_set)
