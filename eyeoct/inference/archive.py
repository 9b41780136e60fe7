"""The APTOS-2024 submission archive: a zip holding exactly `<case>/<case>_{0..5}.<ext>` per case."""
from __future__ import annotations

import zipfile
from pathlib import Path

from eyeoct.case_layout import case_prefix, slice_paths


def write_submission_zip(out_dir: Path, case_ids: list[str], ext: str, zip_path: Path) -> list[str]:
    """Zip the case folders of `case_ids` under `out_dir` into `zip_path`; returns the member names."""
    members = []
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for case_id in case_ids:
            for path in slice_paths(out_dir / case_id, case_prefix(case_id), ext):
                name = f"{case_id}/{path.name}"
                archive.write(path, arcname=name)
                members.append(name)
    tmp.replace(zip_path)
    return members
