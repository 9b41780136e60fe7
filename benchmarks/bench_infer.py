"""Benchmark: inference seconds per OCT volume (6 B-scans) and peak memory of ControlLDM sampling.

For each model config (randomly initialised: timing does not depend on the weights) it times
`ControlLDM.sample` at every DDIM step count, batch size and guidance setting, and prints seconds per
volume with the ratio to the same model's baseline (batch 1, fewest steps, no guidance) measured in
the same run. Guidance > 1 evaluates the conditional and unconditional inputs in one doubled batch.
Peak memory: the process's peak resident set during the call (VmHWM, reset through
/proc/self/clear_refs) and its growth over the resident set before it; `torch.cuda.max_memory_allocated`
on CUDA. A stage-1 export named by a config but absent here is replaced by a random autoencoder of the
architecture in the given AE config; missing pretrained CF-encoder/UNet files are dropped.

    python benchmarks/bench_infer.py \
        [--model demo=configs/dm/phantom_demo.yaml,configs/ae/phantom_demo.yaml] [--model mid=DM.yaml,AE.yaml] \
        [--steps 10 50] [--batch-sizes 1 8] [--guidance 3.0] [--device cpu] [--threads N]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eyeoct.config import instantiate_from_config, load_config  # noqa: E402

DEFAULT_MODELS = ["demo=configs/dm/phantom_demo.yaml,configs/ae/phantom_demo.yaml",
                  "mid=configs/dm/aptos_mid.yaml,configs/ae/aptos_mid.yaml"]
logger = logging.getLogger("bench_infer")


def random_init_model_config(dm_yaml: Path, ae_yaml: Path | None) -> DictConfig:
    """The `model` block of `dm_yaml`, made buildable without trained files (see the module docstring)."""
    model = load_config([dm_yaml]).model
    params = model.params
    export = OmegaConf.select(params, "first_stage")
    if export is not None and not Path(export).is_dir():
        if ae_yaml is None:
            raise FileNotFoundError(f"{dm_yaml}: stage-1 export {export} not found and no AE config given")
        ae_model = load_config([ae_yaml]).model
        params.first_stage = None
        params.first_stage_config = {"target": ae_model.target, "params": {"ddconfig": ae_model.params.ddconfig}}
        params.scale_factor = 1.0
    for key in ("cf_encoder_config.pretrained", "unet_init"):
        path = OmegaConf.select(params, key)
        if path is not None and not Path(path).is_file():
            OmegaConf.update(params, key, None)
    return model


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def timed_sample(model, cf: torch.Tensor, steps: int, guidance: float) -> tuple[float, float, float]:
    """(seconds, peak MiB, peak growth MiB) of one `model.sample` call on the batch `cf`."""
    generators = [torch.Generator(device=cf.device).manual_seed(i) for i in range(cf.shape[0])]
    cuda = cf.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # VmHWM := current RSS
        base = _status_kib("VmRSS") * 1024
    start = time.perf_counter()
    model.sample(cf, steps=steps, eta=0.0, guidance_scale=guidance, generator=generators)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _status_kib("VmHWM") * 1024
    return time.perf_counter() - start, peak / 2**20, (peak - base) / 2**20


def bench_model(name: str, dm_yaml: Path, ae_yaml: Path | None, args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    cfg = random_init_model_config(dm_yaml, ae_yaml)
    model = instantiate_from_config(cfg).eval().to(args.device)
    cf_size = int(cfg.params.cf_size)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"\n[{name}] {dm_yaml}: {n_params:.1f} M parameters, CF {cf_size}x{cf_size}, "
          f"OCT {tuple(model.image_size)}, latent {tuple(model.latent_shape)}")
    print(f"{'batch':>5} {'steps':>5} {'guid':>5} | {'s/volume':>9} {'vs base':>8} | {'peak MiB':>9} {'growth MiB':>10}")
    baseline = None
    for batch in args.batch_sizes:
        cf = torch.rand(batch, 3, cf_size, cf_size, generator=torch.Generator().manual_seed(0)).to(args.device) * 2 - 1
        model.sample(cf, steps=1, guidance_scale=1.0, generator=None)  # warm-up at this batch size
        for steps in args.steps:
            for guidance in (1.0, args.guidance):
                seconds, peak, growth = timed_sample(model, cf, steps, guidance)
                per_volume = seconds / batch
                baseline = baseline or per_volume
                print(f"{batch:>5} {steps:>5} {guidance:>5.1f} | {per_volume:>9.3f} {per_volume / baseline:>7.2f}x | "
                      f"{peak:>9.0f} {growth:>10.0f}", flush=True)


def parse_model(spec: str) -> tuple[str, Path, Path | None]:
    name, _, paths = spec.partition("=")
    files = [REPO / p if not Path(p).is_absolute() else Path(p) for p in paths.split(",") if p]
    if not name or not 1 <= len(files) <= 2:
        raise SystemExit(f"--model expects NAME=DM_YAML[,AE_YAML], got {spec!r}")
    return name, files[0], files[1] if len(files) == 2 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None, metavar="NAME=DM_YAML[,AE_YAML]")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for spec in args.model or DEFAULT_MODELS:
        name, dm_yaml, ae_yaml = parse_model(spec)
        if not dm_yaml.is_file():
            print(f"\n[{name}] skipped: {dm_yaml} not found")
            continue
        with torch.inference_mode():
            bench_model(name, dm_yaml, ae_yaml, args)


if __name__ == "__main__":
    main()
