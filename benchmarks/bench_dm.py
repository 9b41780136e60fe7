"""Stage-2 training step: time, samples/s, achieved GFLOP/s and peak memory, demo and mid-size ControlLDM,
ControlNet on/off, fp32 and bf16 autocast; optionally against another source tree (before/after).

    python benchmarks/bench_dm.py [--steps 3] [--rounds 3] [--configs demo mid] [--threads 1] [--clock cpu]
                                  [--baseline-src /path/to/old/checkout] [--profile 25] [--set key=value ...]

Each measurement runs in a fresh process (so its peak memory is its own): the model is built from that
source tree's configs/dm/phantom_demo.yaml (+ overrides for "mid", + `--set`) with a random first stage of
the demo's architecture; 2 warm-up steps, then `--steps` timed steps on a random batch. A step is what
training does: diffusion loss (first-stage encoding, CF encoder, UNet and ControlNet), backward, AdamW
step, EMA update. FLOPs are counted once per case with torch's FlopCounterMode over one such step
(matrix products, convolutions, attention; forward and backward), so GFLOP/s = FLOPs / median step time.
Peak memory: the CUDA allocator's peak on a GPU, else the peak RSS growth over the built model during the
steps (activations, gradients, optimiser state).

With `--baseline-src` (e.g. `git worktree add /tmp/old <commit>`), every case alternates between the
baseline tree and this one for `--rounds` rounds (fresh processes, B, A, B, A ...) and prints the median
step time of each and the speed-up; both trees run the step code of this script. `--profile N` prints
torch.profiler's N most expensive operators of one step of this tree per case. bf16 is skipped on CPUs
without native bf16 kernels (oneDNN emulates it there, 10-50x slower than fp32) unless `--force-bf16`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import (CLOCK_HELP, count_flops, machine_line,  # noqa: E402
                     peak_rss_growth_mib, reset_peak_rss, time_per_call)

RANDOM_FIRST_STAGE = [
    "model.params.first_stage=null", "model.params.scale_factor=1.0",
    "model.params.first_stage_config={target: ldm.models.autoencoder.AutoencoderKL, params: {ddconfig: "
    "{ch: 32, ch_mult: [1, 2, 4], num_res_blocks: 1, z_channels: 4, num_groups: 16}}}",
]
SIZES = {
    "demo": [],
    # 128x192 B-scans (latent 32x48), CF 224, 196 ViT tokens of width 256
    "mid": ["data.params.dataset_defaults.phantom.oct_height=128", "data.params.dataset_defaults.phantom.oct_width=192",
            "data.params.dataset_defaults.phantom.cf_size=224", "model.params.unet_config.model_channels=128",
            "model.params.unet_config.channel_mult=[1,2,4]", "model.params.unet_config.num_res_blocks=2",
            "model.params.unet_config.context_dim=256", "model.params.unet_config.num_groups=32",
            "model.params.cf_encoder_config.vision_cfg={image_size: 224, patch_size: 16, width: 256, layers: 4, "
            "head_width: 64}"],
}


def run_case(case: dict) -> dict:
    """Build one model from ``case["src"]``, time its training steps; the figures as a dict."""
    torch.set_num_threads(case["threads"])
    from eyeoct.config import instantiate_from_config, load_config

    src = Path(case["src"])
    overrides = RANDOM_FIRST_STAGE + SIZES[case["size"]] + [f"model.params.controlnet.enabled={case['controlnet']}"]
    cfg = load_config([src / "configs/dm/phantom_demo.yaml"], overrides + case["set"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = instantiate_from_config(cfg.model).to(device)
    phantom = cfg.data.params.dataset_defaults.phantom
    gen = torch.Generator().manual_seed(1)
    batch = {"oct": (torch.rand(case["batch_size"], 6, phantom.oct_height, phantom.oct_width, generator=gen) * 2 - 1),
             "cf": (torch.rand(case["batch_size"], 3, phantom.cf_size, phantom.cf_size, generator=gen) * 2 - 1)}
    batch = {key: value.to(device) for key, value in batch.items()}
    optimizer = model.configure_optimizers()["optimizer"]

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=case["bf16"]):
            out = model.training_step(batch, 0)  # older checkouts (--baseline-src) return the bare loss
            loss = out["loss"] if isinstance(out, dict) else out
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.ema.update()
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    else:
        base_kib = reset_peak_rss()
    for _ in range(2):
        step()
    flops = count_flops(step) if case["flops"] else 0
    times = [time_per_call(step, 1, case["clock"]) for _ in range(case["steps"])]
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else peak_rss_growth_mib(base_kib)
    result = {"step_s": statistics.median(times), "flops": flops, "peak_mib": peak,
              "params_m": sum(p.numel() for p in model.trainable_named_parameters().values()) / 1e6}
    if case["profile"]:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        result["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=case["profile"])
    return result


def measure_in_process(case: dict) -> dict:
    """``run_case`` in a fresh interpreter whose imports come from ``case["src"]``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([case["src"], os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(case)], env=env, capture_output=True,
                          text=True)
    if proc.returncode:
        raise RuntimeError(f"case {case} failed in {case['src']}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per case and tree (medians over them)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--configs", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--controlnet", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"], help=CLOCK_HELP)
    parser.add_argument("--baseline-src", type=Path, default=None, help="another checkout to compare against")
    parser.add_argument("--profile", type=int, default=0, help="print the N most expensive operators per case")
    parser.add_argument("--set", nargs="*", default=[], help="extra config overrides, key=value")
    parser.add_argument("--force-bf16", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return
    from eyeoct.devices import cpu_has_native_bf16  # here, not at the top: children import another tree's eyeoct

    precisions = list(args.precision)
    if "bf16" in precisions and not torch.cuda.is_available() and not cpu_has_native_bf16() and not args.force_bf16:
        precisions.remove("bf16")
        print("bf16 skipped: this CPU has no native bf16 kernels (use --force-bf16 to measure the emulation)")
    torch.set_num_threads(args.threads)
    print(f"{machine_line()}; device {'cuda' if torch.cuda.is_available() else 'cpu'}, batch {args.batch_size}, "
          f"{args.steps} steps x {args.rounds} rounds, {args.clock} clock, medians")
    trees = [("baseline", args.baseline_src.resolve())] if args.baseline_src else []
    trees.append(("this", REPO))
    header = (f"{'config':6} {'cnet':4} {'prec':4} {'params[M]':>9} {'step ms':>8} {'samples/s':>9} {'GFLOP':>7} "
              f"{'GFLOP/s':>7} {'peak MiB':>8}")
    if args.baseline_src:
        header += f" {'baseline ms':>11} {'speed-up':>8}"
    print(header)
    for size in args.configs:
        for controlnet in args.controlnet:
            for precision in precisions:
                case = dict(size=size, controlnet=controlnet == "on", bf16=precision == "bf16", steps=args.steps,
                            batch_size=args.batch_size, threads=args.threads, clock=args.clock, set=args.set,
                            flops=True, profile=0)
                runs: dict[str, list[dict]] = {name: [] for name, _ in trees}
                for index in range(args.rounds):
                    for name, src in trees:
                        first = index == 0
                        runs[name].append(measure_in_process({**case, "src": str(src), "flops": first and name == "this",
                                                              "profile": args.profile if first and name == "this" else 0}))
                ours = runs["this"]
                step_s = statistics.median(r["step_s"] for r in ours)
                flops = ours[0]["flops"]
                line = (f"{size:6} {controlnet:4} {precision:4} {ours[0]['params_m']:9.2f} {step_s * 1e3:8.1f} "
                        f"{args.batch_size / step_s:9.2f} {flops / 1e9:7.1f} {flops / step_s / 1e9:7.1f} "
                        f"{statistics.median(r['peak_mib'] for r in ours):8.0f}")
                if args.baseline_src:
                    base_s = statistics.median(r["step_s"] for r in runs["baseline"])
                    line += f" {base_s * 1e3:11.1f} {base_s / step_s:8.2f}"
                print(line, flush=True)
                if args.profile:
                    print(ours[0]["profile"])


if __name__ == "__main__":
    main()
