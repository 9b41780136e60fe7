"""Stage-2 training throughput and peak memory: demo and mid-size ControlLDM, ControlNet on/off, fp32/bf16.

    python benchmarks/bench_dm.py [--steps 5] [--batch-size 8] [--configs demo mid]

Each case runs in a fresh process (so its peak memory is its own): the model is built from
configs/dm/phantom_demo.yaml (+ overrides for "mid") with a random first stage of the demo's
architecture, then `--steps` timed optimiser steps follow 2 warm-up steps on random batches.
Peak memory is the CUDA allocator's peak on a GPU, else the process's peak RSS. Ratios are
against the first case (demo, no ControlNet, fp32) measured in the same run.
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
DEMO_CONFIG = REPO / "configs/dm/phantom_demo.yaml"
RANDOM_FIRST_STAGE = [
    "model.params.first_stage=null", "model.params.scale_factor=1.0",
    "model.params.first_stage_config={target: ldm.models.autoencoder.AutoencoderKL, params: {ddconfig: "
    "{ch: 32, ch_mult: [1, 2, 4], num_res_blocks: 1, z_channels: 4, norm_groups: 16}}}",
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


def run_case(size: str, controlnet: bool, bf16: bool, steps: int, batch_size: int, queue) -> None:
    """Build one model, time `steps` training steps, put (samples/s, peak MiB, params M) on `queue`."""
    sys.path.insert(0, str(REPO))
    from eyeoct.config import instantiate_from_config, load_config

    overrides = RANDOM_FIRST_STAGE + SIZES[size] + [f"model.params.controlnet.enabled={controlnet}"]
    cfg = load_config([DEMO_CONFIG], overrides)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = instantiate_from_config(cfg.model).to(device)
    phantom = cfg.data.params.dataset_defaults.phantom
    batch = {"oct": torch.rand(batch_size, 6, phantom.oct_height, phantom.oct_width, device=device) * 2 - 1,
             "cf": torch.rand(batch_size, 3, phantom.cf_size, phantom.cf_size, device=device) * 2 - 1}
    optimizer = model.configure_optimizers()["optimizer"]

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.diffusion_loss(batch)[0].mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.ema.update()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = steps * batch_size / (time.perf_counter() - start)
    n_params = sum(p.numel() for p in model.trainable_named_parameters().values()) / 1e6
    queue.put((rate, peak_mib, n_params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--configs", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    print(f"device: {'cuda' if torch.cuda.is_available() else 'cpu'}, threads {torch.get_num_threads()}, "
          f"batch {args.batch_size}, {args.steps} timed steps")
    print(f"{'config':6} {'controlnet':10} {'precision':9} {'params[M]':>9} {'samples/s':>9} {'peak MiB':>9} "
          f"{'speed x':>8} {'mem x':>6}")
    baseline = None
    for size in args.configs:
        for controlnet in (False, True):
            for bf16 in (False, True):
                queue = ctx.Queue()
                proc = ctx.Process(target=run_case, args=(size, controlnet, bf16, args.steps, args.batch_size, queue))
                proc.start()
                rate, peak, n_params = queue.get()
                proc.join()
                baseline = baseline or (rate, peak)
                print(f"{size:6} {str(controlnet):10} {'bf16' if bf16 else 'fp32':9} {n_params:9.2f} {rate:9.2f} "
                      f"{peak:9.0f} {rate / baseline[0]:8.2f} {peak / baseline[1]:6.2f}", flush=True)


if __name__ == "__main__":
    main()
