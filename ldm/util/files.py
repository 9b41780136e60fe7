"""Atomic file writes: a unique temporary sibling, then a rename, so readers never see half a file."""
from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path
from typing import BinaryIO, Callable


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside `path`, unique across hosts sharing a file system, processes and calls."""
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64]
    return path.with_name(f".{path.name}.{host}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], fsync: bool = False) -> Path:
    """Write `path` through `write(handle)` into a temporary sibling renamed over it (removed on failure).

    `fsync` flushes the data to disk before the rename (checkpoints: a crash never leaves a truncated file).
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class OutputFolderError(OSError):
    """An output folder that cannot be used: not creatable, not writable, or holding what must not be replaced."""


def ensure_writable_folder(folder: str | Path) -> Path:
    """Create `folder` (and its parents) if needed and prove it writable with a probe file that is removed at once;
    raises `OutputFolderError` naming the folder before any work is done."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"output path {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_sibling(folder / "write-probe")
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as err:
        raise OutputFolderError(f"output folder {folder} is not writable: {err.strerror or err}") from err
    return folder
