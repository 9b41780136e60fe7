"""One progress bar for the long loops a user waits for (inference, baselines, phantom export, data check,
evaluation): the only place in eyeoct that makes a tqdm bar."""
from __future__ import annotations

from typing import Iterable

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str | None = None,
                 unit: str = "it", quiet: bool = False) -> tqdm:
    """A tqdm bar with counts, rate and ETA on stderr; silent with `quiet` or when stderr is not a terminal
    (logs and CI output stay clean)."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=True if quiet else None)
