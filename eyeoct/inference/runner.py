"""The inference loop: check the inputs, draw K samples per CF photo in batches, write everything.

Every input is read and checked before sampling (`input_check.check_fundus_photo`): its verdict goes into
the `input_check` column of index.csv; a flagged input is logged with a warning and still processed, or,
with `strict_inputs`, skipped and listed in skipped.txt. Batches are formed over (case, sample) pairs, so
`--batch-size` only changes speed: each pair's noise comes from its own generator seeded by
`seeding.sample_seed`, so the noise does not depend on the batch size or on the other inputs. (Batched
float kernels sum in another order, ~1e-6, which can move a rare pixel by one grey level.)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import torch

from eyeoct.case_layout import NUM_SLICES
from eyeoct.data.errors import DataError
from eyeoct.data.images import read_rgb
from eyeoct.data.transforms import cf_to_tensor, preprocess_cf
from eyeoct.inference.archive import write_submission_zip
from eyeoct.inference.case_writer import CaseWriter
from eyeoct.inference.index_file import IndexRow, IndexWriter, RunRecord
from eyeoct.inference.input_check import OK, UNREADABLE, check_fundus_photo
from eyeoct.inference.inputs import InferenceInput
from eyeoct.inference.layout import OutputLayout, check_case_ids, check_output_dir, reset_output_dir
from eyeoct.inference.seeding import sample_generators, sample_seed
from eyeoct.inference.statistics import SUBMIT_MODES
from eyeoct.progress import progress_bar
from cldm.cldm import SAMPLING_DTYPES
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER, sampler_class

logger = logging.getLogger(__name__)

OUTPUT_FORMATS = ("png", "jpg")


class SamplingModel(Protocol):
    """What inference needs of a model: ControlLDM's `sample`, taking one generator per batch item."""

    def sample(self, cf: torch.Tensor, steps: int, eta: float, guidance_scale: float,
               generator: list[torch.Generator], sampler: str, precision: str) -> torch.Tensor: ...


@dataclass(frozen=True)
class InferenceOptions:
    """Sampling and output settings of one run (the CLI flags of `scripts/infer.py`).

    `steps` None is the sampler's default (ddim 50, dpmpp-2m 15); `precision` is the autocast of the
    networks (fp32, bf16, fp16); `progress` False silences the bar.
    """

    sampler: str = DEFAULT_SAMPLER
    steps: int | None = None
    precision: str = "fp32"
    guidance: float = 1.0
    eta: float = 0.0
    seed: int = 0
    batch_size: int = 1
    samples_per_input: int = 1
    size: tuple[int, int] = (448, 320)
    ext: str = "jpg"
    submit: str = "first"
    skip_bad: bool = False
    strict_inputs: bool = False
    make_zip: bool = False
    checkpoint: str = ""
    progress: bool = True

    def __post_init__(self):
        solver = sampler_class(self.sampler)
        solver.check_eta(self.eta)
        if self.steps is None:
            object.__setattr__(self, "steps", solver.default_steps)
        for name in ("steps", "batch_size", "samples_per_input"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (width, height) with positive values, got {self.size}")
        if self.precision not in SAMPLING_DTYPES:
            raise ValueError(f"precision must be one of {sorted(SAMPLING_DTYPES)}, got {self.precision!r}")
        if self.ext not in OUTPUT_FORMATS:
            raise ValueError(f"output format must be one of {OUTPUT_FORMATS}, got {self.ext!r}")
        if self.submit not in SUBMIT_MODES:
            raise ValueError(f"submit must be one of {SUBMIT_MODES}, got {self.submit!r}")


@dataclass
class InferenceResult:
    """What a run produced: the cases written, the inputs skipped (path, reason), index and zip paths, and
    every input's check verdict by case id (`ok`, a reason, or `unreadable`)."""

    cases: list[str]
    skipped: list[tuple[Path, str]]
    index_path: Path
    zip_path: Path | None
    input_checks: dict[str, str] = field(default_factory=dict)


def model_device(model: object) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    params = getattr(model, "parameters", None)
    first = next(iter(params()), None) if callable(params) else None
    return first.device if first is not None else torch.device("cpu")


def cf_preparer(size: int) -> Callable[[np.ndarray], torch.Tensor]:
    """The model input of a CF photo: field-of-view square crop, resize to `size`, [3,size,size] in [-1, 1]."""
    return lambda rgb: cf_to_tensor(preprocess_cf(rgb, size))


def _load_cf(item: InferenceInput, prepare_cf: Callable[[np.ndarray], torch.Tensor]) -> torch.Tensor:
    return prepare_cf(read_rgb(item.path))


def _checked_inputs(inputs: list[InferenceInput], prepare_cf: Callable[[np.ndarray], torch.Tensor],
                    options: InferenceOptions) -> tuple[list[InferenceInput], list[tuple[Path, str]], dict[str, str]]:
    """Read and check every input once before sampling, so a bad file fails the run before any time is spent.

    Returns the inputs to sample, the skipped ones (path, reason) and every input's verdict by case id.
    Warnings are logged after the progress bar is done.
    """
    good, skipped, verdicts = [], [], {}
    for item in progress_bar(inputs, desc="checking inputs", unit="image", quiet=not options.progress):
        try:
            rgb = read_rgb(item.path)
            prepare_cf(rgb)
        except DataError as err:
            if not options.skip_bad:
                raise
            skipped.append((item.path, str(err)))
            verdicts[item.case_id] = UNREADABLE
            continue
        verdicts[item.case_id] = verdict = check_fundus_photo(rgb)
        if verdict != OK and options.strict_inputs:
            skipped.append((item.path, f"input check: {verdict}"))
        else:
            good.append(item)
    for path, reason in skipped:
        logger.warning("skipping %s: %s", path, reason)
    for item in good:
        if verdicts[item.case_id] != OK:
            logger.warning("%s does not look like a colour fundus photograph (%s); processing it anyway "
                           "(--strict-inputs skips such inputs)", item.path, verdicts[item.case_id])
    return good, skipped, verdicts


def _sample_batch(model: SamplingModel, cf: torch.Tensor, seeds: list[int], options: InferenceOptions,
                  names: list[str]) -> torch.Tensor:
    with torch.inference_mode():
        volumes = model.sample(cf, steps=options.steps, eta=options.eta, guidance_scale=options.guidance,
                               generator=sample_generators(seeds, cf.device), sampler=options.sampler,
                               precision=options.precision)
    if volumes.ndim != 4 or volumes.shape[:2] != (cf.shape[0], NUM_SLICES):
        raise RuntimeError(f"model.sample returned shape {tuple(volumes.shape)}, "
                           f"expected [{cf.shape[0]},{NUM_SLICES},H,W]")
    bad = [name for name, v in zip(names, volumes) if not torch.isfinite(v).all()]
    if bad:
        raise RuntimeError(f"model produced NaN/inf values for {', '.join(bad)}")
    return volumes.float().cpu()


def _write_skipped(layout: OutputLayout, skipped: list[tuple[Path, str]], verdicts: dict[str, str],
                   record: RunRecord) -> list[IndexRow]:
    layout.skipped_path.write_text("".join(f"{path}\t{reason}\n" for path, reason in skipped))
    return [record.row("skipped", str(path), case=Path(path).stem, cf_path=str(path), note=reason,
                       input_check=verdicts[Path(path).stem]) for path, reason in skipped]


def _sampled_cases(model: SamplingModel, prepare_cf: Callable[[np.ndarray], torch.Tensor],
                   items: list[InferenceInput], options: InferenceOptions
                   ) -> Iterator[tuple[InferenceInput, torch.Tensor, torch.Tensor, list[int]]]:
    """Yield `(input, cf [3,h,w], samples [K,6,H,W], seeds)` per case in input order, sampling in batches."""
    k = options.samples_per_input
    jobs = [(item, j) for item in items for j in range(k)]
    device = model_device(model)
    cf_cache: dict[str, torch.Tensor] = {}
    drawn: dict[str, list[tuple[torch.Tensor, int]]] = {}
    with progress_bar(total=len(jobs), desc=f"sampling ({options.sampler}, {options.steps} steps)", unit="volume",
                      quiet=not options.progress) as bar:
        for first in range(0, len(jobs), options.batch_size):
            batch = jobs[first:first + options.batch_size]
            for item, _ in batch:
                if item.case_id not in cf_cache:
                    cf_cache[item.case_id] = _load_cf(item, prepare_cf)
            cf = torch.stack([cf_cache[item.case_id] for item, _ in batch]).to(device)
            seeds = [sample_seed(options.seed, item.case_id, j) for item, j in batch]
            volumes = _sample_batch(model, cf, seeds, options, [f"{item.path} (sample {j})" for item, j in batch])
            bar.update(len(batch))
            for (item, _), volume, seed in zip(batch, volumes, seeds):
                drawn.setdefault(item.case_id, []).append((volume, seed))
                if len(drawn[item.case_id]) == k:
                    samples, case_seeds = zip(*drawn.pop(item.case_id))
                    yield item, cf_cache.pop(item.case_id), torch.stack(samples), list(case_seeds)


def run_inference(model: SamplingModel, prepare_cf: Callable[[np.ndarray], torch.Tensor],
                  inputs: list[InferenceInput], out_dir: str | Path, options: InferenceOptions,
                  overwrite: bool = False, input_path: str | Path | None = None) -> InferenceResult:
    """Translate every input CF photo (uint8 RGB -> `prepare_cf` -> model input) and write the outputs."""
    check_case_ids([item.case_id for item in inputs])
    layout = check_output_dir(out_dir, overwrite, input_path)
    good, skipped, verdicts = _checked_inputs(inputs, prepare_cf, options)
    reset_output_dir(layout, [item.case_id for item in inputs])
    record = RunRecord(seed=options.seed, sampler=options.sampler, steps=options.steps, guidance=options.guidance,
                       eta=options.eta, precision=options.precision, checkpoint=options.checkpoint)
    writer = CaseWriter(layout, options.ext, options.size, options.submit, record)
    cases = [item.case_id for item in good]
    zip_path = layout.zip_path if options.make_zip else None
    with IndexWriter(layout.index_path) as index:
        for item, cf, samples, seeds in _sampled_cases(model, prepare_cf, good, options):
            index.add(writer.write(item.case_id, item.path, cf, samples, seeds, verdicts[item.case_id]))
        if skipped:
            index.add(_write_skipped(layout, skipped, verdicts, record))
            logger.warning("skipped %d inputs (listed in %s): %s", len(skipped), layout.skipped_path,
                           ", ".join(str(p) for p, _ in skipped))
        if zip_path is not None:
            write_submission_zip(layout.root, cases, options.ext, zip_path)
            index.add([record.row("zip", zip_path.name)])
    flagged = {case: verdict for case, verdict in verdicts.items() if verdict not in (OK, UNREADABLE)}
    if flagged:
        logger.warning("%d of %d inputs do not look like colour fundus photographs (index.csv, column input_check): "
                       "%s", len(flagged), len(inputs), ", ".join(f"{c} ({v})" for c, v in flagged.items()))
    return InferenceResult(cases=cases, skipped=skipped, index_path=layout.index_path, zip_path=zip_path,
                           input_checks=verdicts)
