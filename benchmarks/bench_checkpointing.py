"""Gradient checkpointing of the CF encoder tower and of the stage-1 autoencoder: training memory and time
with and without it, at the APTOS architectures.

    python benchmarks/bench_checkpointing.py [--parts cf_encoder autoencoder] [--cf-batch 4]
                                             [--ae-batch 1] [--ae-size 128 192] [--threads 1]

cf_encoder: the APTOS stage-2 tower (configs/dm/aptos_cldm.yaml: open_clip ViT-B-16 at 224x224, random
weights), tokens and pooled vector projected as in training, a loss on both, backward.
autoencoder: the APTOS stage-1 architecture (configs/ae/aptos_kl_f8.yaml ddconfig: ch 128, ch_mult
[1,2,4,4], 2 ResNet blocks) on `--ae-size` B-scans (default 128x192, a quarter of the APTOS 256x384 pixels,
so that it fits a shared CPU; activation memory grows with the pixel count), reconstruction + KL loss,
backward. Each run is a fresh process on the CPU (large buffers are returned to the system when freed,
`MALLOC_MMAP_THRESHOLD_=65536`); after one warm-up step, memory is the peak RSS growth during a second
step over the model with its gradients already allocated (so: activations and temporaries), and time is
that step's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import machine_line, peak_rss_growth_mib, reset_peak_rss  # noqa: E402


def build(part: str, use_checkpoint: bool, args) -> tuple[torch.nn.Module, callable]:
    """The model of ``part`` and a function running one training forward+backward on a random batch."""
    from eyeoct.config import load_config

    gen = torch.Generator().manual_seed(0)
    if part == "cf_encoder":
        from cldm.cf_encoder import CFEncoder

        params = load_config([REPO / "configs/dm/aptos_cldm.yaml"]).model.params
        cf_cfg = {k: v for k, v in params.cf_encoder_config.items() if k not in ("use_checkpoint", "pretrained")}
        model = CFEncoder(context_dim=params.unet_config.context_dim, pooled_dim=params.unet_config.pooled_cond_dim,
                          use_checkpoint=use_checkpoint, **cf_cfg).train()
        cf = torch.rand(args.cf_batch, 3, 256, 256, generator=gen) * 2 - 1

        def step():
            tokens, pooled = model.encode(cf)
            (tokens.square().mean() + pooled.square().mean()).backward()
        return model, step
    from ldm.models.autoencoder import AutoencoderKL

    ae_params = load_config([REPO / "configs/ae/aptos_kl_f8.yaml"]).model.params
    ddconfig = {**ae_params.ddconfig, "use_checkpoint": use_checkpoint}
    model = AutoencoderKL(ddconfig=ddconfig, lossconfig=ae_params.lossconfig).train()
    x = torch.rand(args.ae_batch, 6, *args.ae_size, generator=gen) * 2 - 1

    def step():
        recon, posterior = model(x)
        loss, _ = model.loss.generator_loss(x, recon, posterior, global_step=0)
        loss.backward()
    return model, step


def run_child(part: str, use_checkpoint: bool, args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, step = build(part, use_checkpoint, args)
    step()  # warm-up; its gradients stay allocated, so the measured growth is activations and temporaries
    for param in model.parameters():
        if param.grad is not None:
            param.grad.zero_()
    base = reset_peak_rss()
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    params = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("loss."))
    return {"peak_mib": peak_rss_growth_mib(base), "seconds": seconds, "params_m": params / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["cf_encoder", "autoencoder"],
                        choices=["cf_encoder", "autoencoder"])
    parser.add_argument("--cf-batch", type=int, default=4)
    parser.add_argument("--ae-batch", type=int, default=1)
    parser.add_argument("--ae-size", type=int, nargs=2, default=[128, 192], metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], args.child[1] == "on", args)))
        return
    torch.set_num_threads(args.threads)
    print(machine_line())
    print(f"{'part':12} {'input':22} {'params[M]':>9} {'plain MiB':>9} {'ckpt MiB':>9} {'mem x':>6} "
          f"{'plain s':>8} {'ckpt s':>8} {'time x':>6}")
    forwarded = ["--cf-batch", str(args.cf_batch), "--ae-batch", str(args.ae_batch), "--ae-size",
                 *map(str, args.ae_size), "--threads", str(args.threads)]
    for part in args.parts:
        results = {}
        for mode in ("off", "on"):
            proc = subprocess.run([sys.executable, __file__, "--child", part, mode, *forwarded], capture_output=True,
                                  text=True, env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
            if proc.returncode:
                raise RuntimeError(f"{part} with checkpointing {mode} failed:\n{proc.stderr[-3000:]}")
            results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        shape = (f"{args.cf_batch}x3x224x224" if part == "cf_encoder"
                 else f"{args.ae_batch}x6x{args.ae_size[0]}x{args.ae_size[1]}")
        off, on = results["off"], results["on"]
        print(f"{part:12} {shape:22} {off['params_m']:9.1f} {off['peak_mib']:9.0f} {on['peak_mib']:9.0f} "
              f"{on['peak_mib'] / off['peak_mib']:6.2f} {off['seconds']:8.1f} {on['seconds']:8.1f} "
              f"{on['seconds'] / off['seconds']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
