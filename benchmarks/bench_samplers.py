"""Benchmark: quality and speed of the samplers (DDIM, DPM-Solver++(2M)) on a trained stage-2 model.

For each `SAMPLER:STEPS` setting it samples K volumes per held-out eye of the run's data config (the demo: the
32 test eyes) with the seeds `scripts/infer.py` uses (per case and sample, so every setting starts from the
same noise), and scores, as the demo does, the per-pixel mean of the K samples (SSIM per B-scan, PSNR per
volume, on the uint8 volumes that would be written) and also sample 0 alone; "spread" is the per-pixel standard
deviation across the K samples (intensities in [0, 1], averaged): how much the samples differ, since SSIM and
PSNR of a mean favour settings whose samples differ less. With `--reference SAMPLER:STEPS` (e.g. ddim:250, a
near-exact solution of the same ODE), sample 0 of every eye is also drawn that way from the same noise, and
"to reference" is each setting's RMS distance to it (intensities in [0, 1]): the solver's own error. The
settings take turns batch
by batch, so a change in machine load hits them alike; seconds per volume are the summed sampling times over
the number of volumes. The first row is the reference of the ratios.

    python benchmarks/bench_samplers.py runs/demo/<stamp>           # a demo folder (uses its dm/) ...
    python benchmarks/bench_samplers.py runs/dm_phantom_demo/<stamp> # ... or a stage-2 run folder
        [--settings ddim:50 dpmpp-2m:10 dpmpp-2m:15 dpmpp-2m:20 ddim:15] [--samples 8] [--batch-size 16]
        [--part test] [--guidance 1.0] [--seed 0] [--threads N] [--reference ddim:250]
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eyeoct.config import instantiate_from_config, load_config  # noqa: E402
from eyeoct.data.transforms import unit_to_uint8  # noqa: E402
from eyeoct.inference.loading import load_inference_model, resolve_model_files  # noqa: E402
from eyeoct.inference.seeding import sample_generators, sample_seed  # noqa: E402
from eyeoct.inference.statistics import submitted_volume  # noqa: E402
from eyeoct.metrics import psnr_per_volume, ssim_per_image  # noqa: E402
from ldm.models.diffusion.samplers import SAMPLER_NAMES, make_sampler  # noqa: E402

DEFAULT_SETTINGS = ("ddim:50", "dpmpp-2m:10", "dpmpp-2m:15", "dpmpp-2m:20", "ddim:15")


def parse_setting(text: str) -> tuple[str, int]:
    name, _, steps = text.partition(":")
    if name not in SAMPLER_NAMES or not steps.isdigit():
        raise argparse.ArgumentTypeError(f"expected SAMPLER:STEPS with SAMPLER in {SAMPLER_NAMES}, got {text!r}")
    return name, int(steps)


def run_folder(path: Path) -> Path:
    """The stage-2 run folder: `path` itself, or `path/dm` for a demo folder."""
    return path / "dm" if (path / "dm" / "config.yaml").is_file() else path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def scores(volumes: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    """Mean SSIM per B-scan and mean PSNR per volume of uint8-quantised volumes [N,6,H,W] in [-1, 1]."""
    pred = torch.from_numpy(unit_to_uint8(volumes)).double() / 255
    target = torch.from_numpy(unit_to_uint8(truth)).double() / 255
    return (ssim_per_image(pred, target, data_range=1.0).mean().item(),
            psnr_per_volume(pred, target, data_range=1.0).mean().item())


def sample_reference(model, items: list[dict], args: argparse.Namespace) -> torch.Tensor:
    """Sample 0 of every eye [N,6,H,W] drawn with the `--reference` setting."""
    name, steps = args.reference
    out = []
    for first in range(0, len(items), args.batch_size):
        batch = items[first:first + args.batch_size]
        seeds = [sample_seed(args.seed, item["id"], 0) for item in batch]
        out.append(model.sample(torch.stack([item["cf"] for item in batch]), steps=steps, sampler=name,
                                guidance_scale=args.guidance, generator=sample_generators(seeds, "cpu")))
    return torch.cat(out)


def rms_distance(volumes: torch.Tensor, reference: torch.Tensor) -> float:
    """Root-mean-square difference of two volume stacks in [-1, 1], on intensities in [0, 1]."""
    return ((volumes - reference) / 2).pow(2).mean().sqrt().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="demo folder or stage-2 run folder (config.yaml, checkpoints/)")
    parser.add_argument("--settings", type=parse_setting, nargs="+",
                        default=[parse_setting(s) for s in DEFAULT_SETTINGS])
    parser.add_argument("--samples", type=int, default=8, help="samples per eye; their per-pixel mean is scored")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--part", default="test", help="held-out part of the run's data config")
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reference", type=parse_setting, default=None, metavar="SAMPLER:STEPS",
                        help="also draw sample 0 of every eye with this (long) setting and report each setting's "
                             "distance to it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    config, ckpt = resolve_model_files(run_folder(args.run))
    loaded = load_inference_model(config, ckpt, "cpu")
    model = loaded.model
    dataset = instantiate_from_config(load_config([config]).data).build_dataset(args.part)
    items = [dataset[i] for i in range(len(dataset))]
    truth = torch.stack([item["oct"] for item in items])
    jobs = [(index, j) for index in range(len(items)) for j in range(args.samples)]
    print(f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    print(f"{ckpt}: {len(items)} held-out eyes ({args.part}), {args.samples} samples each, batch {args.batch_size}, "
          f"guidance {args.guidance}, {'EMA' if loaded.uses_ema else 'raw'} weights")

    volumes = {s: torch.empty(len(jobs), *truth.shape[1:]) for s in args.settings}
    seconds = dict.fromkeys(args.settings, 0.0)
    with torch.inference_mode():
        for turn, first in enumerate(range(0, len(jobs), args.batch_size)):
            batch = jobs[first:first + args.batch_size]
            cf = torch.stack([items[index]["cf"] for index, _ in batch])
            seeds = [sample_seed(args.seed, items[index]["id"], j) for index, j in batch]
            order = args.settings[turn % len(args.settings):] + args.settings[:turn % len(args.settings)]
            for name, steps in order:
                start = time.perf_counter()
                out = model.sample(cf, steps=steps, guidance_scale=args.guidance,
                                   generator=sample_generators(seeds, "cpu"), sampler=name)
                seconds[(name, steps)] += time.perf_counter() - start
                volumes[(name, steps)][first:first + len(batch)] = out
            print(f"  {first + len(batch)}/{len(jobs)} volumes", file=sys.stderr, end="\r")
        reference = None if args.reference is None else sample_reference(model, items, args)

    rows, first_row = [], None
    for setting in args.settings:
        name, steps = setting
        per_eye = volumes[setting].view(len(items), args.samples, *truth.shape[1:])
        mean_ssim, mean_psnr = scores(torch.stack([submitted_volume(v, "mean") for v in per_eye]), truth)
        one_ssim, one_psnr = scores(per_eye[:, 0], truth)
        spread = ((per_eye.clamp(-1, 1) + 1) / 2).std(dim=1, correction=0).mean().item()
        per_volume = seconds[setting] / len(jobs)
        evaluations = len(make_sampler(name, model.schedule, model.parameterization).timesteps(steps))
        distance = "-" if reference is None else f"{rms_distance(per_eye[:, 0], reference):.4f}"
        first_row = first_row or (mean_ssim, per_volume)
        rows.append(f"| {name} | {steps} | {evaluations} | {mean_ssim:.4f} ({100 * mean_ssim / first_row[0]:.1f}%) | "
                    f"{mean_psnr:.2f} | {one_ssim:.4f} | {one_psnr:.2f} | {spread:.4f} | {distance} | "
                    f"{per_volume:.3f} | {first_row[1] / per_volume:.2f}x |")
    print(f"\n| sampler | steps | model evaluations | SSIM, mean of {args.samples} (vs first row) | PSNR (dB), mean | "
          f"SSIM, one sample | PSNR, one sample | spread | to reference | s / volume | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
