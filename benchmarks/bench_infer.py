"""Benchmark: inference seconds per OCT volume (6 B-scans) and peak memory of ControlLDM sampling.

For each model config (randomly initialised: timing does not depend on the weights) it times
`ControlLDM.sample` (DDIM, or `--sampler dpmpp-2m`) at every step count, batch size and guidance setting, and
prints seconds per volume with the ratio to the same model's baseline (batch 1, fewest steps, no guidance) measured in
the same run. Guidance > 1 evaluates the conditional and unconditional inputs in one doubled batch.
Peak memory: the process's peak resident set during the call (VmHWM, reset through
/proc/self/clear_refs) and its growth over the resident set before it; `torch.cuda.max_memory_allocated`
on CUDA. A stage-1 export named by a config but absent here is replaced by a random autoencoder of the
architecture in the given AE config; missing pretrained CF-encoder/UNet files are dropped.

    python benchmarks/bench_infer.py \
        [--model NAME=DM.yaml[,AE.yaml] ...] [--set NAME:KEY=VALUE ...] \
        [--steps 10 50] [--batch-sizes 1 8] [--guidance 3.0] [--sampler ddim] [--device cpu] [--threads N]

Default models: `demo` (configs/dm/phantom_demo.yaml with configs/ae/phantom_demo.yaml's architecture)
and `mid` (the same with MID_OVERRIDES below).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import torch
import yaml
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eyeoct.config import instantiate_from_config, load_config  # noqa: E402
from ldm.models.diffusion.samplers import SAMPLER_NAMES  # noqa: E402
from measure import reset_peak_rss, status_kib  # noqa: E402

DEMO = ("configs/dm/phantom_demo.yaml", "configs/ae/phantom_demo.yaml")
# mid-size: the demo architecture at twice the resolution and width (OCT 128x192, latent 4x32x48, CF 256,
# a ViT-S-like CF tower with 196 tokens), between the CPU demo and a full APTOS model
MID_OVERRIDES = [
    "params.image_size=[128, 192]", "params.cf_size=256",
    "params.first_stage_config.params.ddconfig.ch=64",
    "params.unet_config.model_channels=128", "params.unet_config.channel_mult=[1, 2, 4]",
    "params.unet_config.num_head_channels=64", "params.unet_config.context_dim=256",
    "params.unet_config.num_groups=32",
    "params.cf_encoder_config.vision_cfg={image_size: 224, patch_size: 16, width: 384, layers: 6, head_width: 64}",
    "params.controlnet.hint_hidden_channels=[16, 32, 96, 256]",
]
DEFAULT_MODELS = {"demo": (*DEMO, []), "mid": (*DEMO, MID_OVERRIDES)}


def random_init_model_config(dm_yaml: Path, ae_yaml: Path | None, overrides: list[str]) -> DictConfig:
    """The `model` block of `dm_yaml`, buildable without trained files, with `key=value` overrides applied."""
    model = load_config([dm_yaml]).model
    params = model.params
    missing = OmegaConf.is_missing(params, "first_stage")
    if missing or (params.get("first_stage") is not None and not Path(params.first_stage).is_dir()):
        if ae_yaml is None:
            raise FileNotFoundError(f"{dm_yaml}: no stage-1 export at first_stage and no AE config given")
        ae_model = load_config([ae_yaml]).model
        params.first_stage = None
        params.first_stage_config = {"target": ae_model.target, "params": {"ddconfig": ae_model.params.ddconfig}}
        params.scale_factor = 1.0
    for key in ("cf_encoder_config.pretrained", "unet_init"):
        path = OmegaConf.select(params, key)
        if path is not None and not Path(path).is_file():
            OmegaConf.update(params, key, None)
    for item in overrides:
        key, _, value = item.partition("=")
        OmegaConf.update(model, key, yaml.safe_load(value), merge=False)
    return model


def timed_sample(model, cf: torch.Tensor, steps: int, guidance: float, sampler: str) -> tuple[float, float, float]:
    """(seconds, peak MiB, peak growth MiB) of one `model.sample` call on the batch `cf`."""
    generators = [torch.Generator(device=cf.device).manual_seed(i) for i in range(cf.shape[0])]
    cuda = cf.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = reset_peak_rss() * 1024
    start = time.perf_counter()
    model.sample(cf, steps=steps, eta=0.0, guidance_scale=guidance, generator=generators, sampler=sampler)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = status_kib("VmHWM") * 1024
    return time.perf_counter() - start, peak / 2**20, (peak - base) / 2**20


def bench_model(name: str, dm_yaml: Path, ae_yaml: Path | None, overrides: list[str],
                args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    cfg = random_init_model_config(dm_yaml, ae_yaml, overrides)
    model = instantiate_from_config(cfg).eval().to(args.device)
    cf_size = int(cfg.params.cf_size)
    n_params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"\n[{name}] {dm_yaml}: {n_params:.1f} M parameters, CF {cf_size}x{cf_size}, "
          f"OCT {tuple(model.image_size)}, latent {tuple(model.latent_shape)}")
    print(f"{'batch':>5} {'steps':>5} {'guid':>5} | {'s/volume':>9} {'vs base':>8} | {'peak MiB':>9} {'growth MiB':>10}")
    baseline = None
    for batch in args.batch_sizes:
        cf = torch.rand(batch, 3, cf_size, cf_size, generator=torch.Generator().manual_seed(0)).to(args.device) * 2 - 1
        model.sample(cf, steps=1, guidance_scale=1.0, generator=None, sampler=args.sampler)  # warm-up
        for steps in args.steps:
            for guidance in (1.0, args.guidance):
                seconds, peak, growth = timed_sample(model, cf, steps, guidance, args.sampler)
                per_volume = seconds / batch
                baseline = baseline or per_volume
                print(f"{batch:>5} {steps:>5} {guidance:>5.1f} | {per_volume:>9.3f} {per_volume / baseline:>7.2f}x | "
                      f"{peak:>9.0f} {growth:>10.0f}", flush=True)


def resolve(path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else REPO / path


def parse_model(spec: str) -> tuple[str, tuple[str, str | None, list[str]]]:
    name, _, paths = spec.partition("=")
    files = [p for p in paths.split(",") if p]
    if not name or not 1 <= len(files) <= 2:
        raise SystemExit(f"--model expects NAME=DM_YAML[,AE_YAML], got {spec!r}")
    return name, (files[0], files[1] if len(files) == 2 else None, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None, metavar="NAME=DM_YAML[,AE_YAML]",
                        help="model configs to time (default: demo and mid, see MID_OVERRIDES)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME:KEY=VALUE",
                        help="override a key of model NAME's `model` block, e.g. mid:params.cf_size=224")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--sampler", choices=SAMPLER_NAMES, default="ddim")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    models = dict(parse_model(spec) for spec in args.model) if args.model else DEFAULT_MODELS
    for name, (dm_yaml, ae_yaml, overrides) in models.items():
        extra = [item.split(":", 1)[1] for item in args.set if item.split(":", 1)[0] == name]
        if not resolve(dm_yaml).is_file():
            print(f"\n[{name}] skipped: {dm_yaml} not found")
            continue
        with torch.inference_mode():
            bench_model(name, resolve(dm_yaml), ae_yaml and resolve(ae_yaml), [*overrides, *extra], args)


if __name__ == "__main__":
    main()
