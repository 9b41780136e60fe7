"""The one exception family of the data package, so callers can catch every bad-input case at once.

Readers that meet several bad inputs (rows of a CSV, files of a case) report them together as
`DataProblems`. Inside `collecting_problems()` (the data check of `eyeoct.data.check`) a case list
records its bad rows there and goes on with the good ones, so one pass finds every bad file.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence


class DataError(ValueError):
    """Input data (a CSV, a folder layout, an image) that cannot be used as given; `path` names the file."""

    def __init__(self, message: str, path: str | Path | None = None):
        super().__init__(message)
        self.path = None if path is None else str(path)


class ImageReadError(DataError):
    """An image file that is missing, cannot be decoded, or has content the reader cannot use."""


@dataclass(frozen=True)
class DataProblem:
    """One unusable input: the file (or folder, or CSV) and what is wrong with it."""

    path: str
    reason: str

    @classmethod
    def from_error(cls, err: DataError, fallback_path: str | Path) -> list["DataProblem"]:
        """The problems an error stands for: all of a `DataProblems`, else one."""
        if isinstance(err, DataProblems) and err.problems:
            return list(err.problems)
        return [cls(err.path or str(fallback_path), str(err))]


def format_problems(problems: Sequence[DataProblem]) -> str:
    """One line per problem: the reason, prefixed by `<file>: ` unless the reason names the file already."""
    return "\n".join(f"  {p.reason}" if p.path in p.reason else f"  {p.path}: {p.reason}" for p in problems)


class DataProblems(DataError):
    """Several unusable inputs found together; the message lists them one per line (`listing`)."""

    def __init__(self, message: str, problems: Sequence[DataProblem] = ()):
        super().__init__(message)  # message first: a DataLoader worker re-raises it as DataProblems(message)
        self.problems = list(problems)

    @classmethod
    def listing(cls, problems: Sequence[DataProblem], what: str) -> "DataProblems":
        """The error for `problems` found in `what` (a CSV, a case, a data config)."""
        return cls(f"{len(problems)} unusable input(s) in {what}:\n{format_problems(problems)}", problems)


_collector: ContextVar[list[DataProblem] | None] = ContextVar("eyeoct_data_problems", default=None)


@contextmanager
def collecting_problems() -> Iterator[list[DataProblem]]:
    """Within this block, case lists record bad rows in the yielded list and keep the good ones."""
    problems: list[DataProblem] = []
    token = _collector.set(problems)
    try:
        yield problems
    finally:
        _collector.reset(token)


def report_problems(problems: Sequence[DataProblem], what: str) -> None:
    """Record `problems` in the active `collecting_problems()` block, or raise them as one `DataProblems`."""
    if not problems:
        return
    collector = _collector.get()
    if collector is None:
        raise DataProblems.listing(problems, what)
    collector.extend(problems)
