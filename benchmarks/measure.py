"""Measurement helpers shared by the benchmark scripts: clocks, interleaved medians, FLOPs, peak memory."""
from __future__ import annotations

import datetime
import platform
import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK_HELP = ("wall: elapsed time; cpu: CPU time of this process (all its threads), far less disturbed by "
              "other jobs sharing the cores; with one thread the two agree on a quiet machine")


def machine_line() -> str:
    """CPU model, torch threads and the date, for the header of a result table."""
    from eyeoct.devices import cpu_has_native_bf16  # here: a child measuring another tree imports that eyeoct

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = "native bf16" if cpu_has_native_bf16() else "no native bf16"
    return (f"{model} ({flags}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"{datetime.date.today().isoformat()}")


def time_per_call(fn: Callable[[], object], calls: int, clock: str = "wall") -> float:
    """Seconds per call of ``fn`` over ``calls`` calls."""
    now = CLOCKS[clock]
    start = now()
    for _ in range(calls):
        fn()
    return (now() - start) / calls


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int, calls: int,
                        clock: str = "wall") -> dict[str, float]:
    """Median seconds per call of each function, timed A, B, A, B ... over ``rounds`` rounds after one
    warm-up call each, so that a load change on the machine hits all of them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(time_per_call(fn, calls, clock))
    return {name: statistics.median(values) for name, values in times.items()}


def _cpu_sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_sdpa_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (matrix products, convolutions and attention, forward and backward).

    torch's counter knows the CUDA attention kernels; the CPU flash-attention ones are added here."""
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops,
               torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flops}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter:
        fn()
    return counter.get_total_flops()


def status_kib(field: str) -> int:
    """A ``/proc/self/status`` field (VmRSS, VmHWM) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak_rss() -> int:
    """Reset the peak resident set (VmHWM) to the current RSS and return the RSS in KiB (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return status_kib("VmRSS")


def peak_rss_growth_mib(base_kib: int) -> float:
    """Peak RSS since ``reset_peak_rss`` above its returned base, in MiB."""
    return (status_kib("VmHWM") - base_kib) / 1024
