"""Reference predictions built from the training cases, written in the submission layout.

Methods (folder names under the output root):
- `mean`: the pixel-wise mean of all training OCT volumes, the same prediction for every case;
- `nn_pixel`: the OCT of the training case whose CF thumbnail is closest in L2 (see `retrieval`);
- `nn_encoder`: the OCT of the training case whose mean CF-encoder token is closest in cosine;
- `oracle`: the noise-free rendering of the true eye (phantom only), the practical upper bound.
The held-out ground truth goes to `ground_truth/`, so `scripts/evaluate.py --pred <root>/<method>
--gt <root>/ground_truth` scores a method directly.

One pass over the training set accumulates the mean (float64) and the retrieval keys; the training
volumes the NN methods need are read again by index after matching.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from eyeoct.baselines.retrieval import (PIXEL_KEY_SIZE, encoder_keys, nearest_by_cosine, nearest_by_l2,
                                        pixel_keys)
from eyeoct.data.transforms import unit_to_uint8
from eyeoct.progress import progress_bar
from eyeoct.volume_io import write_volume

logger = logging.getLogger(__name__)

BASELINE_METHODS = ("mean", "nn_pixel", "nn_encoder", "oracle")
GROUND_TRUTH = "ground_truth"
DESCRIPTIONS = {
    "mean": ("pixel-wise mean of all training OCT volumes as uint8 (float64 sum, rounded half to even), "
             "same for every case"),
    "nn_pixel": (f"OCT of the training case whose CF, area-averaged to {PIXEL_KEY_SIZE}x{PIXEL_KEY_SIZE} "
                 f"per channel in [-1,1], is closest in L2; ties to the lowest training index"),
    "nn_encoder": ("OCT of the training case whose mean CF-encoder token is closest in cosine similarity; "
                   "ties to the lowest training index"),
    "oracle": "true B-scans rendered without speckle (phantom only): the bound no predictor beats by much",
}


class BaselineError(ValueError):
    """Baseline inputs or an output folder that cannot be used as asked."""


@dataclass
class BaselineSettings:
    """How to write and what to compute; `size` is (width, height) or None for the data's own size."""

    which: Sequence[str] = BASELINE_METHODS
    size: tuple[int, int] | None = None
    ext: str = "png"
    batch_size: int = 8
    num_workers: int = 0
    info: dict = field(default_factory=dict)  # extra provenance copied into every baseline.json
    progress: bool = True  # progress bars (shown only on a terminal)


def check_methods(which: Sequence[str]) -> list[str]:
    """Validated list of method names, in the given order."""
    unknown = [m for m in which if m not in BASELINE_METHODS]
    if unknown or not which:
        raise BaselineError(f"unknown baseline method(s) {unknown or list(which)}; "
                            f"choose from {', '.join(BASELINE_METHODS)}")
    return list(dict.fromkeys(which))


def create_empty_output_dir(out_dir: str | Path) -> Path:
    """Create `out_dir`, refusing an existing non-empty folder (nothing is ever overwritten)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BaselineError(f"output folder {out_dir} already exists and is not empty; "
                            f"choose a new --out folder (baselines never overwrite)")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _loader(dataset: Dataset, settings: BaselineSettings) -> DataLoader:
    return DataLoader(dataset, batch_size=settings.batch_size, shuffle=False, num_workers=settings.num_workers)


def _batches(dataset: Dataset, settings: BaselineSettings, desc: str) -> Iterator[dict]:
    """The batches of `dataset` in order, with a progress bar counting its cases."""
    with progress_bar(total=len(dataset), desc=desc, unit="case", quiet=not settings.progress) as bar:
        for batch in _loader(dataset, settings):
            yield batch
            bar.update(len(batch["id"]))


@dataclass
class TrainingSummary:
    """What one pass over the training set leaves: the mean volume, the retrieval keys, the case ids."""

    mean: np.ndarray
    ids: list[str]
    pixel_keys: torch.Tensor | None
    encoder_keys: torch.Tensor | None


def summarise_training(train_set: Dataset, settings: BaselineSettings, encoder: nn.Module | None,
                       want_pixel: bool) -> TrainingSummary:
    """One pass: float64 sum of the uint8 OCT volumes (exact) and the CF keys of every case."""
    total, ids, pixel, encoded = None, [], [], []
    for batch in _batches(train_set, settings, "baselines: training pass"):
        if "oct" not in batch:
            raise BaselineError(f"training case {batch['id'][0]!r} has no OCT: baselines need paired training data")
        batch_sum = torch.from_numpy(unit_to_uint8(batch["oct"])).double().sum(dim=0)
        total = batch_sum if total is None else total + batch_sum
        ids.extend(batch["id"])
        if want_pixel:
            pixel.append(pixel_keys(batch["cf"]))
        if encoder is not None:
            encoded.append(encoder_keys(encoder, batch["cf"]))
    if not ids:
        raise BaselineError("the training set is empty: nothing to build baselines from")
    mean = np.clip(np.rint(total.numpy() / len(ids)), 0, 255).astype(np.uint8)
    logger.info("training pass: %d cases, mean volume %s", len(ids), mean.shape)
    return TrainingSummary(mean, ids, torch.cat(pixel) if pixel else None, torch.cat(encoded) if encoded else None)


def run_baselines(train_set: Dataset, heldout_sets: Sequence[Dataset], out_dir: str | Path,
                  settings: BaselineSettings, encoder: nn.Module | None = None,
                  oracle_sets: Sequence[Dataset] | None = None) -> dict[str, Path]:
    """Write every method in `settings.which` plus the ground truth; returns {method: folder}.

    `oracle_sets[i]` is the noise-free twin of `heldout_sets[i]` (same cases, same order), needed for
    the oracle. Held-out cases without OCT get predictions but no ground truth.
    """
    which = check_methods(settings.which)
    if "nn_encoder" in which and encoder is None:
        raise BaselineError("nn_encoder needs a CF encoder")
    if "oracle" in which and oracle_sets is None:
        raise BaselineError("the oracle needs noise-free twins of the held-out sets (phantom data only)")
    out_dir = create_empty_output_dir(out_dir)
    folders = {name: out_dir / name for name in (*which, GROUND_TRUTH)}
    summary = summarise_training(train_set, settings, encoder if "nn_encoder" in which else None,
                                 want_pixel="nn_pixel" in which)

    write = _writer(settings)
    ids, queries, with_truth = _heldout_pass(heldout_sets, oracle_sets, folders, summary, settings, encoder, write)
    logger.info("held-out: %d cases (%d with ground truth)", len(ids), with_truth)

    matches = {}
    if "nn_pixel" in which:
        matches["nn_pixel"] = nearest_by_l2(torch.cat(queries["nn_pixel"]), summary.pixel_keys).tolist()
    if "nn_encoder" in which:
        matches["nn_encoder"] = nearest_by_cosine(torch.cat(queries["nn_encoder"]), summary.encoder_keys).tolist()
    _write_retrieved(write, folders, ids, matches, train_set, quiet=not settings.progress)

    for method in which:
        record = {"method": method, "description": DESCRIPTIONS[method], "train_cases": len(summary.ids),
                  "heldout_cases": len(ids), "size": list(settings.size) if settings.size else None,
                  "format": settings.ext, **settings.info}
        if method in matches:
            record["matches"] = {case: summary.ids[m] for case, m in zip(ids, matches[method])}
        (folders[method] / "baseline.json").write_text(json.dumps(record, indent=2) + "\n")
    if not with_truth:
        folders.pop(GROUND_TRUTH)
    logger.info("wrote %s under %s", ", ".join(folders), out_dir)
    return folders


def _heldout_pass(heldout_sets: Sequence[Dataset], oracle_sets: Sequence[Dataset] | None, folders: dict[str, Path],
                  summary: TrainingSummary, settings: BaselineSettings, encoder: nn.Module | None, write):
    """One pass over the held-out cases: ground truth, mean and oracle written, retrieval queries kept."""
    ids, queries, with_truth = [], {"nn_pixel": [], "nn_encoder": []}, 0
    for index, dataset in enumerate(heldout_sets):
        twin = iter(_loader(oracle_sets[index], settings)) if "oracle" in folders else None
        for batch in _batches(dataset, settings, f"baselines: held-out pass {index + 1}/{len(heldout_sets)}"):
            repeated = set(ids) & set(batch["id"])
            if repeated:
                raise BaselineError(f"held-out case ids {sorted(repeated)} repeat across the held-out sets; "
                                    f"their outputs would collide")
            ids.extend(batch["id"])
            if "oct" in batch:
                with_truth += _write_batch(write, folders[GROUND_TRUTH], batch["id"], unit_to_uint8(batch["oct"]))
            if "mean" in folders:
                _write_batch(write, folders["mean"], batch["id"], [summary.mean] * len(batch["id"]))
            if twin is not None:
                clean = next(twin)
                if list(clean["id"]) != list(batch["id"]):
                    raise BaselineError(f"noise-free twin out of step: {list(clean['id'])} vs {list(batch['id'])}")
                _write_batch(write, folders["oracle"], batch["id"], unit_to_uint8(clean["oct"]))
            if summary.pixel_keys is not None:
                queries["nn_pixel"].append(pixel_keys(batch["cf"]))
            if summary.encoder_keys is not None:
                queries["nn_encoder"].append(encoder_keys(encoder, batch["cf"]))
    if not ids:
        raise BaselineError("no held-out cases: nothing to predict")
    return ids, queries, with_truth


def _writer(settings: BaselineSettings):
    def write(folder: Path, case_id: str, volume: np.ndarray) -> None:
        write_volume(folder, case_id, volume, ext=settings.ext, size=settings.size)
    return write


def _write_batch(write, folder: Path, case_ids: Sequence[str], volumes) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for case_id, volume in zip(case_ids, volumes):
        write(folder, case_id, volume)
    return len(case_ids)


def _write_retrieved(write, folders: dict[str, Path], ids: list[str], matches: dict[str, list[int]],
                     train_set: Dataset, quiet: bool = False) -> None:
    """Read each matched training volume once (by index) and write it for every case that retrieved it."""
    wanted: dict[int, list[tuple[str, str]]] = {}
    for method, picks in matches.items():
        folders[method].mkdir(parents=True, exist_ok=True)
        for case_id, pick in zip(ids, picks):
            wanted.setdefault(pick, []).append((method, case_id))
    for pick in progress_bar(sorted(wanted), desc="baselines: retrieved volumes", unit="volume", quiet=quiet):
        volume = unit_to_uint8(train_set[pick]["oct"])
        for method, case_id in wanted[pick]:
            write(folders[method], case_id, volume)
