"""Benchmark: phantom rendering speed and APTOS loader speed without cache, filling the cache, and cached.

Renders phantom eyes at 64x64 and at full size (512 CF, 496x768 OCT), then writes an APTOS-layout
copy of full-size phantom eyes to a temporary folder with make_phantom's writer (CF JPEG, B-scan JPEGs,
half of the eyes as two-panel infrared | B-scan exports) and reads it with `AptosDataset` at the sizes of configs/data/aptos.yaml: without a cache (decode, panel
detection and resize every time), cold (the same plus writing the cache) and cached (reading the
.npz arrays). Prints cases/s and the ratio cached/uncached.

    python benchmarks/bench_data.py [--cases 8] [--workers 0] [--repeats 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eyeoct.data.datasets import AptosDataset  # noqa: E402
from eyeoct.data.phantom import PhantomConfig, render_case  # noqa: E402
from eyeoct.data.phantom.export import write_phantom_dataset  # noqa: E402

CF_SIZE, OCT_SIZE = 256, (256, 384)


def phantom_rate(config: PhantomConfig, cases: int) -> float:
    start = time.perf_counter()
    for index in range(cases):
        render_case(0, index, config)
    return cases / (time.perf_counter() - start)


def loader_rate(dataset: AptosDataset, workers: int) -> float:
    loader = DataLoader(dataset, batch_size=2, num_workers=workers)
    start = time.perf_counter()
    count = sum(len(batch["id"]) for batch in loader)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8, help="phantom eyes in the APTOS-layout copy")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the cached data (best is shown)")
    args = parser.parse_args()

    small = phantom_rate(PhantomConfig(cf_size=64, oct_height=64, oct_width=64), 20)
    full = phantom_rate(PhantomConfig(), 3)
    print(f"phantom render  64x64 (CF 64, OCT 64x64):      {small:8.2f} cases/s")
    print(f"phantom render  full (CF 512, OCT 496x768):    {full:8.2f} cases/s")

    with tempfile.TemporaryDirectory() as tmp:
        write_phantom_dataset(Path(tmp) / "phantom", args.cases, "aptos", val_fraction=0.0, two_panel_fraction=0.5)
        csv = Path(tmp) / "phantom" / "train" / "train.csv"
        settings = dict(cf_size=CF_SIZE, oct_size=OCT_SIZE)
        uncached = loader_rate(AptosDataset(csv, **settings), args.workers)
        cache_dir = Path(tmp) / "cache"
        cold = loader_rate(AptosDataset(csv, cache_dir=cache_dir, **settings), args.workers)
        cached = max(loader_rate(AptosDataset(csv, cache_dir=cache_dir, **settings), args.workers)
                     for _ in range(args.repeats))
    print(f"APTOS loader ({args.cases} phantom eyes, CF 512 -> {CF_SIZE}, B-scans 496x768 JPEG (half of them "
          f"two-panel 496x1536) -> "
          f"{OCT_SIZE[0]}x{OCT_SIZE[1]}, workers={args.workers}):")
    print(f"  no cache:            {uncached:8.2f} samples/s")
    print(f"  cold (fills cache):  {cold:8.2f} samples/s")
    print(f"  cached:              {cached:8.2f} samples/s")
    print(f"  ratio cached / no cache: {cached / uncached:6.1f}x   cached / cold: {cached / cold:6.1f}x")


if __name__ == "__main__":
    main()
