"""Datasets yielding the sample dict of the data contract, from the phantom, APTOS-2024 or plain folders.

A sample is `{"cf": float32 [3,h,w], "oct": float32 [6,H,W], "id": str, "cf_path": str}` with images
in [-1, 1] (`x/127.5 - 1`); there is no "oct" key for cases without OCT. Each dataset turns a case
into uint8 arrays once; `cache_dir` keeps them on disk (keyed by the preprocessing settings; for the
phantom by `PHANTOM_VERSION`, for image files by a fingerprint of the reading code) and
`cache_in_memory` keeps them in the process (each loader worker holds its own copy).
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from eyeoct.data.aptos import load_aptos_cases
from eyeoct.data.cache import ArrayCache, code_fingerprint, files_signature
from eyeoct.data.cases import EyeCase, split_by_group
from eyeoct.data.errors import DataError, DataProblem, DataProblems
from eyeoct.data.folder import load_folder_cases
from eyeoct.data.images import read_oct_slice, read_rgb
from eyeoct.data.phantom import PHANTOM_VERSION, PhantomConfig, eye_facts, render_case
from eyeoct.data.transforms import cf_to_tensor, preprocess_cf, preprocess_oct, uint8_to_unit

logger = logging.getLogger(__name__)

SPLITS = ("all", "train", "val")
CODE_FILES = ("images.py", "transforms.py", "fundus_fov.py")  # the code that turns image files into arrays
_DATA_DIR = Path(__file__).resolve().parent


class CaseArrayDataset(Dataset):
    """Base class: subclasses give ids, a cache signature and uint8 arrays; this adds caching and tensors."""

    def __init__(self, cache_dir: str | Path | None = None, cache_in_memory: bool = False):
        self.cache = ArrayCache(cache_dir, self.cache_settings()) if cache_dir else None
        self.memory: dict[int, dict[str, np.ndarray]] | None = {} if cache_in_memory else None

    def case_id(self, index: int) -> str:
        raise NotImplementedError

    def cf_path(self, index: int) -> str:
        return ""

    def cache_settings(self) -> dict[str, Any]:
        """Everything that changes the arrays of a case (used as the disk cache key)."""
        raise NotImplementedError

    def source_signature(self, index: int) -> str:
        """Identifies the inputs of one case; a cache entry with another signature is rebuilt."""
        return ""

    def load_arrays(self, index: int) -> dict[str, np.ndarray]:
        """`{"cf": uint8 [h,w,3], "oct": uint8 [6,H,W]}` (no "oct" for cases without OCT)."""
        raise NotImplementedError

    def arrays(self, index: int) -> dict[str, np.ndarray]:
        """The uint8 arrays of a case, from memory, the disk cache, or freshly loaded."""
        if self.memory is not None and index in self.memory:
            return self.memory[index]
        arrays = None
        if self.cache is not None:
            signature = self.source_signature(index)
            arrays = self.cache.load(self.case_id(index), signature)
            if arrays is None:
                arrays = self.load_arrays(index)
                self.cache.store(self.case_id(index), arrays, signature)
        if arrays is None:
            arrays = self.load_arrays(index)
        if self.memory is not None:
            self.memory[index] = arrays
        return arrays

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {type(self).__name__} of {len(self)} cases")
        arrays = self.arrays(index)
        sample: dict[str, Any] = {"cf": cf_to_tensor(arrays["cf"]), "id": self.case_id(index), "cf_path": self.cf_path(index)}
        if "oct" in arrays:
            sample["oct"] = uint8_to_unit(arrays["oct"])
        return sample


class PhantomDataset(CaseArrayDataset):
    """Phantom eyes `start .. start+num_cases-1` of `seed`, rendered at the sizes of `phantom` (PhantomConfig kwargs).

    Use disjoint index ranges (or seeds) for training and held-out eyes.
    """

    def __init__(self, seed: int = 0, start: int = 0, num_cases: int = 16, phantom: dict[str, Any] | None = None,
                 noise_free: bool = False, cache_dir: str | Path | None = None, cache_in_memory: bool = True):
        if int(num_cases) < 1 or int(start) < 0 or int(seed) < 0:
            raise DataError(f"PhantomDataset needs seed >= 0, start >= 0, num_cases >= 1; got {seed}, {start}, {num_cases}")
        self.seed, self.start, self.num_cases = int(seed), int(start), int(num_cases)
        self.config = PhantomConfig(**(phantom or {}))
        self.noise_free = bool(noise_free)
        super().__init__(cache_dir, cache_in_memory)

    def __len__(self) -> int:
        return self.num_cases

    def case_id(self, index: int) -> str:
        return f"phantom-{self.seed}-{self.start + index:06d}"

    def cache_settings(self) -> dict[str, Any]:
        return {"kind": "phantom", "seed": self.seed, "noise_free": self.noise_free, "config": asdict(self.config),
                "version": PHANTOM_VERSION}

    def eye_facts(self, index: int) -> dict:
        """Laterality, pathology and myopia of case `index` (the phantom's hidden parameters the CF shows)."""
        return eye_facts(self.seed, self.start + index, self.config)

    def load_arrays(self, index: int) -> dict[str, np.ndarray]:
        case = render_case(self.seed, self.start + index, self.config, noise_free=self.noise_free)
        return {"cf": case.cf, "oct": case.oct}


def select_split(cases: Sequence[EyeCase], split: str, val_fraction: float, split_seed: int) -> list[EyeCase]:
    """All cases, or the train or val part of a patient-level split."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "all":
        return list(cases)
    train, val = split_by_group(cases, val_fraction, split_seed, group=lambda c: c.pid)
    chosen = train if split == "train" else val
    if not chosen:
        raise DataError(f"the {split} split of {len(cases)} cases is empty (val_fraction={val_fraction})")
    return chosen


class ImageFilesDataset(CaseArrayDataset):
    """Cases stored as image files: CF cropped to its field of view (`fundus_fov`) and resized to `cf_size`,
    B-scans to `oct_size` [H, W]."""

    def __init__(self, cases: Sequence[EyeCase], cf_size: int = 256, oct_size: Sequence[int] = (256, 384),
                 cache_dir: str | Path | None = None, cache_in_memory: bool = False):
        if len(oct_size) != 2:
            raise DataError(f"oct_size must be [height, width], got {list(oct_size)}")
        self.cases = list(cases)
        self.cf_size = int(cf_size)
        self.oct_size = (int(oct_size[0]), int(oct_size[1]))
        super().__init__(cache_dir, cache_in_memory)

    def __len__(self) -> int:
        return len(self.cases)

    def case_id(self, index: int) -> str:
        return self.cases[index].case_id

    def cf_path(self, index: int) -> str:
        return str(self.cases[index].cf_path)

    def cache_settings(self) -> dict[str, Any]:
        return {"kind": "image_files", "cf_size": self.cf_size, "oct_size": list(self.oct_size),
                "code": code_fingerprint([_DATA_DIR / name for name in CODE_FILES])}

    def source_signature(self, index: int) -> str:
        case = self.cases[index]
        return files_signature([case.cf_path, *(case.oct_paths or [])])

    def load_arrays(self, index: int) -> dict[str, np.ndarray]:
        """Every file of the case is read before an error is raised, so it names all the bad ones."""
        case = self.cases[index]
        errors: list[tuple[DataError, Path]] = []

        def read(reader, path):
            try:
                return reader(path)
            except DataError as err:
                errors.append((err, path))
                return None

        cf = read(read_rgb, case.cf_path)
        slices = [read(read_oct_slice, p) for p in case.oct_paths or []]
        if len(errors) == 1:
            raise errors[0][0]
        if errors:
            problems = [problem for err, path in errors for problem in DataProblem.from_error(err, path)]
            raise DataProblems.listing(problems, f"case {case.case_id}")
        arrays = {"cf": preprocess_cf(cf, self.cf_size)}
        if case.oct_paths is not None:
            arrays["oct"] = preprocess_oct(slices, *self.oct_size)
        return arrays


class AptosDataset(ImageFilesDataset):
    """APTOS-2024 cases of `csv_path` (see `eyeoct.data.aptos`); `split` train/val is patient-level, seeded."""

    def __init__(self, csv_path: str | Path, data_root: str | Path | None = None, require_oct: bool = True,
                 split: str = "all", val_fraction: float = 0.1, split_seed: int = 0, **kwargs: Any):
        cases = select_split(load_aptos_cases(csv_path, data_root, require_oct), split, val_fraction, split_seed)
        logger.info("APTOS %s: %d cases (%s split)", csv_path, len(cases), split)
        super().__init__(cases, **kwargs)


class FolderDataset(ImageFilesDataset):
    """Cases of the plain folder layout (see `eyeoct.data.folder`); `split` as in `AptosDataset`."""

    def __init__(self, root: str | Path, require_oct: bool = True, patient_separator: str | None = None,
                 split: str = "all", val_fraction: float = 0.1, split_seed: int = 0, **kwargs: Any):
        cases = select_split(load_folder_cases(root, require_oct, patient_separator), split, val_fraction, split_seed)
        logger.info("folder %s: %d cases (%s split)", root, len(cases), split)
        super().__init__(cases, **kwargs)
