"""One place that sets up Python logging for scripts (library code only calls `logging.getLogger`)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | int = "INFO", log_file: str | Path | None = None) -> None:
    """Log to stderr (and to `log_file` if given) at `level`; safe to call more than once."""
    root = logging.getLogger()
    root.setLevel(level if isinstance(level, int) else level.upper())
    formatter = logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S")
    if not any(getattr(h, "_eyeoct", False) for h in root.handlers):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        stream._eyeoct = True
        root.addHandler(stream)
    if log_file is not None:
        log_file = Path(log_file)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file)
        handler.setFormatter(formatter)
        root.addHandler(handler)
