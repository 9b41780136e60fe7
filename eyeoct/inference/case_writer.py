"""Writes the outputs of one CF photo once its K samples are drawn, and the index rows describing them."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from eyeoct.inference.index_file import IndexRow, RunRecord
from eyeoct.inference.layout import OutputLayout
from eyeoct.inference.montage import save_montage
from eyeoct.data.transforms import unit_to_uint8
from eyeoct.inference.statistics import std_map, submitted_volume
from eyeoct.volume_io import write_volume


class CaseWriter:
    """Writes submission slices, per-sample volumes, uncertainty maps and the montage of each case."""

    def __init__(self, layout: OutputLayout, ext: str, size: tuple[int, int], submit: str, record: RunRecord):
        self.layout, self.ext, self.size, self.submit, self.record = layout, ext, tuple(size), submit, record

    def _row(self, kind: str, case_id: str, cf_path: Path, path: Path, sample: str = "", k: int | None = None,
             sample_seed: int | None = None) -> IndexRow:
        return self.record.row(kind, path.relative_to(self.layout.root).as_posix(), case=case_id, sample=sample,
                               slice=k, cf_path=str(cf_path), sample_seed=sample_seed)

    def write(self, case_id: str, cf_path: Path, cf: torch.Tensor, samples: torch.Tensor,
              seeds: list[int], input_check: str = "") -> list[IndexRow]:
        """Write case `case_id` from its model input `cf` [3,h,w] and `samples` [K,6,H,W] drawn with `seeds`;
        every row carries the input's check verdict `input_check`."""
        many = samples.shape[0] > 1
        use_mean = many and self.submit == "mean"
        slices = unit_to_uint8(submitted_volume(samples, self.submit if many else "first"))
        paths = write_volume(self.layout.root, case_id, slices, ext=self.ext, size=self.size)
        rows = [self._row("submission", case_id, cf_path, p, "mean" if use_mean else "0", k,
                          None if use_mean else seeds[0]) for k, p in enumerate(paths)]
        if many:
            for j, (sample, seed) in enumerate(zip(samples, seeds)):
                paths = write_volume(self.layout.samples_root(j), case_id, unit_to_uint8(sample), ext=self.ext,
                                     size=self.size)
                rows += [self._row("sample", case_id, cf_path, p, str(j), k, seed) for k, p in enumerate(paths)]
            rows += self._write_std_maps(case_id, cf_path, std_map(samples))
        montage = save_montage(self.layout.montage_path(case_id), unit_to_uint8(cf).transpose(1, 2, 0), slices)
        rows.append(self._row("montage", case_id, cf_path, montage))
        return [dataclasses.replace(row, input_check=input_check) for row in rows]

    def _write_std_maps(self, case_id: str, cf_path: Path, maps: np.ndarray) -> list[IndexRow]:
        rows = []
        for k, array in enumerate(maps):
            path = self.layout.uncertainty_path(case_id, k)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).resize(self.size, Image.Resampling.BILINEAR).save(path)
            rows.append(self._row("uncertainty", case_id, cf_path, path, "std", k))
        return rows
