"""Benchmark: PyTorch SDPA (used by ldm.modules.attention) against explicit softmax(QK^T/sqrt(d))V.

Prints wall time and peak memory of both at a few sequence lengths, in fp32 and under bf16 autocast,
with the ratios explicit/SDPA. Peak memory is the peak resident set growth of a fresh subprocess on the
CPU (VmHWM, reset through /proc/self/clear_refs), or ``torch.cuda.max_memory_allocated`` on CUDA.

    python benchmarks/bench_attention.py [--seq 256 1024 4096] [--heads 8] [--dim-head 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from measure import peak_rss_growth_mib, reset_peak_rss


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v


IMPLS = {"explicit": explicit_attention, "sdpa": F.scaled_dot_product_attention}


def make_qkv(seq: int, heads: int, dim_head: int, device: str, batch: int = 1):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(batch, heads, seq, dim_head, generator=gen).to(device) for _ in range(3)]


def run(impl: str, q, k, v, dtype: str) -> torch.Tensor:
    device_type = q.device.type
    with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
        return IMPLS[impl](q, k, v)


def time_ms(impl: str, q, k, v, dtype: str, repeats: int) -> float:
    run(impl, q, k, v, dtype)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if q.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run(impl, q, k, v, dtype)
        if q.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def peak_mib_here(impl: str, seq: int, heads: int, dim_head: int, dtype: str, device: str) -> float:
    """Peak memory growth of one call (run inside a fresh process on the CPU)."""
    q, k, v = make_qkv(seq, heads, dim_head, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        run(impl, q, k, v, dtype)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = reset_peak_rss()
    run(impl, q, k, v, dtype)
    return peak_rss_growth_mib(base)


def peak_mib(impl: str, seq: int, heads: int, dim_head: int, dtype: str, device: str) -> float:
    if device.startswith("cuda"):
        return peak_mib_here(impl, seq, heads, dim_head, dtype, device)
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}  # large buffers go back to the OS when freed
    args = [sys.executable, __file__, "--memory-child", impl, str(seq), str(heads), str(dim_head), dtype, device]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dim-head", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--memory-child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        impl, seq, heads, dim_head, dtype, device = args.memory_child
        print(peak_mib_here(impl, int(seq), int(heads), int(dim_head), dtype, device))
        return

    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"batch 1, heads {args.heads}, dim_head {args.dim_head}")
    header = f"{'seq':>6} {'dtype':>5} | {'explicit ms':>11} {'sdpa ms':>9} {'speed-up':>8} | " \
             f"{'explicit MiB':>12} {'sdpa MiB':>9} {'mem ratio':>9} | {'max |diff|':>10}"
    print(header)
    print("-" * len(header))
    for dtype in ("fp32", "bf16"):
        for seq in args.seq:
            q, k, v = make_qkv(seq, args.heads, args.dim_head, args.device)
            diff = (run("explicit", q, k, v, dtype).float() - run("sdpa", q, k, v, dtype).float()).abs().max().item()
            t_exp = time_ms("explicit", q, k, v, dtype, args.repeats)
            t_sdpa = time_ms("sdpa", q, k, v, dtype, args.repeats)
            del q, k, v
            m_exp = peak_mib("explicit", seq, args.heads, args.dim_head, dtype, args.device)
            m_sdpa = peak_mib("sdpa", seq, args.heads, args.dim_head, dtype, args.device)
            print(f"{seq:>6} {dtype:>5} | {t_exp:>11.2f} {t_sdpa:>9.2f} {t_exp / t_sdpa:>7.2f}x | "
                  f"{m_exp:>12.1f} {m_sdpa:>9.1f} {m_exp / max(m_sdpa, 0.1):>8.1f}x | {diff:>10.2e}")


if __name__ == "__main__":
    main()
