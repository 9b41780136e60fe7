"""`index.csv`: one row per file an inference run wrote (and per input it skipped)."""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class IndexRow:
    """One written file. `kind` is submission, sample, uncertainty, montage, zip or skipped.

    `sample` is the sample number, `mean` for a submitted per-pixel mean, `std` for an uncertainty map,
    empty where it does not apply; `slice` is 0..5 or empty; `path` is relative to the output folder
    (the input file itself for `skipped`). `input_check` is the verdict on the input photo (`ok`, or why it
    does not look like a colour fundus photograph, `unreadable`; see `input_check`), empty for run-wide
    rows. `seed` is the run seed, `sample_seed` the derived seed that produced this sample (empty for maps
    built from several samples); `sampler`, `steps` and `precision` say how it was sampled.
    """

    kind: str
    case: str
    sample: str
    slice: str
    path: str
    cf_path: str
    input_check: str
    seed: int
    sample_seed: str
    sampler: str
    steps: int
    guidance: float
    eta: float
    precision: str
    checkpoint: str
    note: str = ""


INDEX_COLUMNS = [f.name for f in fields(IndexRow)]


@dataclass(frozen=True)
class RunRecord:
    """The settings every index row repeats, so each file can be traced to how it was made."""

    seed: int
    sampler: str
    steps: int
    guidance: float
    eta: float
    precision: str
    checkpoint: str

    def row(self, kind: str, path: str, case: str = "", sample: str = "", slice: int | None = None,
            cf_path: str = "", sample_seed: int | None = None, note: str = "", input_check: str = "") -> IndexRow:
        """An index row of this run; `slice` and `sample_seed` are left empty when None."""
        return IndexRow(kind=kind, case=case, sample=sample, slice="" if slice is None else str(slice), path=path,
                        cf_path=cf_path, input_check=input_check, seed=self.seed,
                        sample_seed="" if sample_seed is None else str(sample_seed), sampler=self.sampler,
                        steps=self.steps, guidance=self.guidance, eta=self.eta, precision=self.precision,
                        checkpoint=self.checkpoint,
                        note=note)


class IndexWriter:
    """Appends rows to `index.csv` as files are written, so an interrupted run still lists its files."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = path.open("w", newline="")
        self._writer = csv.DictWriter(self._handle, fieldnames=INDEX_COLUMNS)
        self._writer.writeheader()

    def add(self, rows: list[IndexRow]) -> None:
        self._writer.writerows(asdict(row) for row in rows)
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "IndexWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_index_paths(path: Path) -> list[str]:
    """The `path` column of an index written by `IndexWriter`, for rows describing written files."""
    with path.open(newline="") as handle:
        return [row["path"] for row in csv.DictReader(handle) if row.get("kind") != "skipped" and row.get("path")]
