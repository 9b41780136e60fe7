"""Stage-1 training throughput and peak memory: demo and mid-size AutoencoderKL, fp32 vs bf16 autocast.

    python benchmarks/bench_ae.py [--steps 3] [--configs demo mid]

Each case runs in a fresh process (so its peak memory is its own): the model comes from
configs/ae/phantom_demo.yaml ("mid": 128x128 slices, ch 64, ch_mult [1,2,4,4]), and `--steps` timed
training steps (encode, sample, decode, loss, backward, AdamW step) follow one warm-up step on random
batches. bf16 runs the forward and loss under `torch.autocast(dtype=torch.bfloat16)` with fp32
weights, as Lightning's bf16-mixed does. Peak memory is the CUDA allocator's peak on a GPU, else the
process's peak RSS above its RSS after the imports. Ratios compare bf16 to fp32 of the same size, measured in the same run.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs/ae/phantom_demo.yaml"
# name -> (config overrides, batch size, slice height, slice width)
SIZES = {
    "demo": ([], 8, 64, 96),
    "mid": (["model.params.ddconfig.ch=64", "model.params.ddconfig.ch_mult=[1,2,4,4]",
             "model.params.ddconfig.num_groups=32"], 4, 128, 128),
}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _run_case(size: str, precision: str, steps: int, queue) -> None:
    sys.path.insert(0, str(REPO))
    from eyeoct.config import instantiate_from_config, load_config
    from ldm.models.autoencoder import AutoencoderKL  # noqa: F401  (imported before the memory baseline)

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    baseline_mb = _peak_memory_mb(device)  # the imports' share of the peak RSS on a CPU
    overrides, batch, height, width = SIZES[size]
    cfg = load_config([DEMO_CONFIG], overrides)
    model = instantiate_from_config(cfg.model).to(device)
    optimizer = torch.optim.AdamW([p for n, p in model.named_parameters() if not n.startswith("loss.")], lr=1e-4)
    x = torch.rand(batch, model.ddconfig["in_channels"], height, width, device=device) * 2 - 1

    def step(global_step: int) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            recon, posterior = model(x)
            loss, _ = model.loss.generator_loss(x, recon, posterior, global_step, model.decoder.last_layer)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(steps):
        step(k + 1)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("loss."))
    queue.put({"samples_per_s": steps * batch / seconds, "peak_mb": _peak_memory_mb(device) - baseline_mb,
               "params": params,
               "batch": batch, "shape": f"{height}x{width}", "device": device.type})


def measure(size: str, precision: str, steps: int) -> dict:
    """Run one case in a fresh process and return its figures."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_run_case, args=(size, precision, steps, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} timed steps per case")
    print(f"{'config':6} {'slices':>8} {'batch':>5} {'params':>8} {'precision':>9} {'samples/s':>10} {'peak MB':>8} "
          f"{'speed vs fp32':>13} {'memory vs fp32':>14}")
    for size in args.configs:
        fp32 = None
        for precision in ("fp32", "bf16"):
            r = measure(size, precision, args.steps)
            fp32 = fp32 or r
            print(f"{size:6} {r['shape']:>8} {r['batch']:>5} {r['params'] / 1e6:>7.2f}M {precision:>9} "
                  f"{r['samples_per_s']:>10.2f} {r['peak_mb']:>8.0f} {r['samples_per_s'] / fp32['samples_per_s']:>13.2f} "
                  f"{r['peak_mb'] / fp32['peak_mb']:>14.2f}")


if __name__ == "__main__":
    main()
