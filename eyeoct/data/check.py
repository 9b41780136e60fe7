"""The data check: one pass over every case of every part of a data config, before any training.

Each case is read as training would read it (through the dataset, so the disk cache is filled on the
way, and a warm cache entry is loaded without decoding any image). Every unusable input is collected:
broken CSV rows and case folders (missing files, wrong slice count, paths outside the root), images that
cannot be decoded (truncated, empty, not an image, colour B-scans) and anything else that fails while
reading a case. `scripts/prepare_data.py` runs it on demand; the training commands run it at start-up.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset

from eyeoct.config import ConfigError, instantiate_from_config
from eyeoct.data.datamodule import EyeOCTDataModule
from eyeoct.data.errors import DataError, DataProblem, DataProblems, collecting_problems
from eyeoct.progress import progress_bar

logger = logging.getLogger(__name__)

PARTS = ("train", "val", "test", "predict")


@dataclass
class DataCheckReport:
    """What the check read (`cases` per part), where arrays are cached, and every problem found."""

    cases: dict[str, int] = field(default_factory=dict)
    cache_folders: list[str] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        parts = ", ".join(f"{part} {n}" for part, n in self.cases.items()) or "no cases"
        return f"checked {parts} case(s) in {self.seconds:.1f} s: {len(self.problems)} unusable input(s)"

    def raise_if_problems(self, what: str) -> None:
        """Raise one `DataProblems` listing every problem found in `what`."""
        if self.problems:
            raise DataProblems.listing(self.problems, what)


class _CaseReader(Dataset):
    """Reads case `index` of `dataset` and returns the problems it has (none when it loads)."""

    def __init__(self, dataset: Dataset, part: str):
        self.dataset, self.part = dataset, part

    def __len__(self) -> int:
        return len(self.dataset)

    def _name(self, index: int) -> str:
        case_id = getattr(self.dataset, "case_id", None)
        return f"{self.part} case {case_id(index) if case_id else index}"

    def __getitem__(self, index: int) -> list[DataProblem]:
        try:
            self.dataset[index]
        except DataError as err:
            return DataProblem.from_error(err, self._name(index))
        except Exception as err:  # noqa: BLE001 - whatever stops a case from loading would stop training too
            return [DataProblem(self._name(index), f"{type(err).__name__}: {err}")]
        return []


def _as_is(item: Any) -> Any:
    return item


def _read_every_case(dataset: Dataset, part: str, num_workers: int, progress: bool) -> list[DataProblem]:
    loader = DataLoader(_CaseReader(dataset, part), batch_size=None, num_workers=num_workers, collate_fn=_as_is)
    problems: list[DataProblem] = []
    for found in progress_bar(loader, total=len(dataset), desc=f"checking {part}", unit="case", quiet=not progress):
        problems.extend(found)
    return problems


def check_data(data_cfg: DictConfig, progress: bool = True) -> DataCheckReport:
    """Read every case of the train/val/test/predict datasets of a `data:` block; list every problem.

    `progress`: show a progress bar (only on a terminal, see `eyeoct.progress`). Raises `ConfigError` for a
    block that is not an `EyeOCTDataModule`; unusable data is returned in the report, never raised.
    """
    start = time.perf_counter()
    datamodule = instantiate_from_config(data_cfg)
    if not isinstance(datamodule, EyeOCTDataModule):
        raise ConfigError(f"the data check needs data.target eyeoct.data.datamodule.EyeOCTDataModule, "
                          f"got {type(datamodule).__name__}")
    report = DataCheckReport()
    for part in PARTS:
        with collecting_problems() as found:
            try:
                dataset = datamodule.build_dataset(part)
            except DataError as err:
                found.extend(DataProblem.from_error(err, f"data.params.{part}"))
                dataset = None
        report.problems.extend(found)
        if dataset is None:
            continue
        report.cases[part] = len(dataset)
        cache = getattr(dataset, "cache", None)
        if cache is not None and str(cache.folder) not in report.cache_folders:
            report.cache_folders.append(str(cache.folder))
        report.problems.extend(_read_every_case(dataset, part, datamodule.num_workers, progress))
    report.problems = sorted(set(report.problems), key=lambda p: (p.path, p.reason))  # train and val read one CSV
    report.seconds = time.perf_counter() - start
    logger.info("data check: %s", report.summary())
    return report
