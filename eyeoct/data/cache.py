"""On-disk cache of preprocessed cases, so decoding, panel detection and resizing happen once.

Layout: `<cache_dir>/<key>/<case id>-<hash>.npz` (uncompressed uint8 arrays) plus `settings.json`,
where `<key>` hashes the preprocessing settings (sizes, dataset kind, and which code makes the arrays: the
phantom's `PHANTOM_VERSION`, a fingerprint of the image-reading sources for image files): changing any of them
starts a new folder and never reads stale arrays. Each entry also stores a signature of its
source files (path, size, modification time), so an edited image is decoded again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ldm.util.files import atomic_write

logger = logging.getLogger(__name__)

_SIGNATURE = "__signature__"


def settings_key(settings: dict[str, Any]) -> str:
    """A short stable hash of JSON-able preprocessing settings."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_fingerprint(paths: list[Path]) -> str:
    """A hash of source files (with this module), so editing the code that makes the arrays renews the key."""
    digest = hashlib.sha256()
    for path in [Path(__file__), *paths]:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def files_signature(paths: list[Path]) -> str:
    """A hash of the paths, sizes and modification times of the source files of one case."""
    parts = []
    for path in paths:
        stat = Path(path).stat()
        parts.append(f"{Path(path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


class ArrayCache:
    """uint8 arrays per case under `<cache_dir>/<settings key>/`; safe with several loader workers."""

    def __init__(self, cache_dir: str | Path, settings: dict[str, Any]):
        self.settings = settings
        self.key = settings_key(settings)
        self.folder = Path(cache_dir) / self.key

    def path_for(self, case_id: str) -> Path:
        """File of one case: a filesystem-safe version of the id plus a hash of the exact id."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", case_id)[:80]
        return self.folder / f"{safe}-{hashlib.sha256(case_id.encode()).hexdigest()[:8]}.npz"

    def load(self, case_id: str, signature: str) -> dict[str, np.ndarray] | None:
        """The stored arrays of a case, or None if absent, unreadable or made from other source files."""
        path = self.path_for(case_id)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored[_SIGNATURE]) != signature:
                    return None
                return {name: stored[name] for name in stored.files if name != _SIGNATURE}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            logger.warning("ignoring unreadable cache entry %s (%s); it will be rebuilt", path, err)
            return None

    def store(self, case_id: str, arrays: dict[str, np.ndarray], signature: str) -> None:
        """Write the arrays of a case (atomically, so concurrent workers never see half a file).

        The first write also creates the folder and its `settings.json` (what the key stands for)."""
        settings_file = self.folder / "settings.json"
        if not settings_file.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.settings, indent=1, sort_keys=True, default=str).encode()
            atomic_write(settings_file, lambda handle: handle.write(text))
        payload = {**arrays, _SIGNATURE: np.array(signature)}
        atomic_write(self.path_for(case_id), lambda handle: np.savez(handle, **payload))
