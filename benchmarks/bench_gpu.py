"""GPU training throughput and peak memory of both stages at the APTOS configs, each `speed:` setting on and
off, and inference seconds per volume at each precision.

    python benchmarks/bench_gpu.py [--steps 10] [--stages ae dm infer] [--size aptos|tiny] [--device cuda|cpu]

Every case runs in a fresh process (its peak memory is its own) and times `--steps` optimiser steps after
3 warm-up steps (compilation happens in the warm-up): stage 2 at batch 8 (the APTOS data config), stage 1 at
batch 4 (the APTOS stage-1 config) with every loss term on (GAN included), both under bf16 autocast as the
configs train, with gradient clipping and (stage 2) the EMA update, as in training. Ratios are against the
first case of each stage, measured in the same run. `--size tiny --device cpu` is a smoke run of the script.
Inference: the stage-2 model samples 8 volumes with 25 steps of the default sampler (DPM-Solver++(2M)) and
guidance 2 at fp32, bf16 and fp16.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPEED_CASES = {  # name -> speed block
    "baseline": {},
    "channels_last": {"channels_last": True},
    "tf32 (matmul high)": {"matmul_precision": "high"},
    "cudnn benchmark": {"cudnn_benchmark": True},
    "compile": {"compile": True},
    "all on": {"channels_last": True, "matmul_precision": "high", "cudnn_benchmark": True, "compile": True},
}
BATCH = {"ae": 4, "dm": 8}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")


def build(stage: str, size: str, speed: dict, device: torch.device):
    """(model, its optimisers, one training step) of `stage` with the `speed` block applied, on `device`."""
    from aptos_models import autoencoder_config, stage2_config
    from omegaconf import OmegaConf

    from eyeoct.config import instantiate_from_config
    from eyeoct.speed import SpeedSettings, apply_to_model, apply_to_process

    cfg = stage2_config(size) if stage == "dm" else autoencoder_config(size)
    settings = SpeedSettings.from_config(OmegaConf.create({"speed": speed}))
    apply_to_process(settings)
    torch.backends.cudnn.benchmark = settings.cudnn_benchmark
    torch.manual_seed(0)
    model = instantiate_from_config(cfg.model)
    apply_to_model(model, settings)
    model = model.to(device).train()
    n = BATCH[stage]
    h, w = stage2_config(size).model.params.image_size  # both stages train on the same data's B-scans
    batch = {"oct": torch.rand(n, 6, h, w, device=device) * 2 - 1}
    if stage == "dm":
        cf = int(cfg.model.params.cf_size)
        batch["cf"] = torch.rand(n, 3, cf, cf, device=device) * 2 - 1
        optimizers = [model.configure_optimizers()["optimizer"]]
        params = list(model.trainable_named_parameters().values())
    else:
        optimizers = model.configure_optimizers()[0]
        params = [p for group in optimizers for g in group.param_groups for p in g["params"]]
    gan_step = model.loss.disc_start if stage == "ae" else 0  # every loss term on

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            if stage == "dm":
                loss = model.training_step(batch, 0)["loss"]
            else:
                loss, _ = model.training_losses(batch["oct"], model.micro_batch_generator(0), gan_step + 1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if stage == "dm":
            model.ema.update()

    return model, optimizers, step


def run_training_case(stage: str, size: str, speed: dict, steps: int, device: str, queue) -> None:
    device = torch.device(device)
    _, _, step = build(stage, size, speed, device)
    for _ in range(3):
        step()
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _synchronize(device)
    queue.put((steps * BATCH[stage] / (time.perf_counter() - start), _peak_gib(device)))


def run_inference_case(size: str, precision: str, steps: int, device: str, queue) -> None:
    from aptos_models import stage2_config

    from eyeoct.config import instantiate_from_config

    device = torch.device(device)
    cfg = stage2_config(size)
    torch.manual_seed(0)
    model = instantiate_from_config(cfg.model).to(device).eval()
    model.merge_ema()
    cf_size = int(cfg.model.params.cf_size)
    cf = torch.rand(8, 3, cf_size, cf_size, device=device) * 2 - 1

    def sample():
        generators = [torch.Generator(device=device).manual_seed(i) for i in range(cf.shape[0])]
        return model.sample(cf, steps=steps, guidance_scale=2.0, generator=generators, precision=precision)

    sample()
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    sample()
    _synchronize(device)
    queue.put(((time.perf_counter() - start) / cf.shape[0], _peak_gib(device)))


def in_fresh_process(target, *args):
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--stages", nargs="+", default=["dm", "ae", "infer"], choices=["dm", "ae", "infer"])
    parser.add_argument("--cases", nargs="+", default=list(SPEED_CASES), choices=list(SPEED_CASES))
    parser.add_argument("--size", default="aptos", choices=["aptos", "tiny"])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU (or --size tiny --device cpu for a smoke run)")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"device: {name}, torch {torch.__version__}, {args.size} configs, {args.steps} timed steps")
    for stage in [s for s in args.stages if s != "infer"]:
        print(f"\nstage {'2 (ControlLDM)' if stage == 'dm' else '1 (AutoencoderKL)'}, batch {BATCH[stage]}, "
              f"bf16 autocast\n{'speed setting':22} {'samples/s':>9} {'peak GiB':>8} {'speed x':>8} {'mem x':>6}")
        baseline = None
        for case in args.cases:
            rate, peak = in_fresh_process(run_training_case, stage, args.size, SPEED_CASES[case], args.steps,
                                          args.device)
            baseline = baseline or (rate, peak)
            print(f"{case:22} {rate:9.2f} {peak:8.2f} {rate / baseline[0]:8.2f} {peak / baseline[1]:6.2f}",
                  flush=True)
    if "infer" in args.stages:
        print("\ninference, 8 volumes, 25 DPM-Solver++(2M) steps, guidance 2")
        print(f"{'precision':10} {'s/volume':>8} {'peak GiB':>8}")
        for precision in ("fp32", "bf16", "fp16"):
            seconds, peak = in_fresh_process(run_inference_case, args.size, precision, 25, args.device)
            print(f"{precision:10} {seconds:8.3f} {peak:8.2f}", flush=True)


if __name__ == "__main__":
    main()
