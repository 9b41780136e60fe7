"""Benchmark: the data check (scripts/prepare_data.py, and the training commands at start-up) on a cold and a
warm cache.

Writes full-size phantom eyes in the APTOS layout (CF 512 JPEG, 496x768 B-scan JPEGs, half of them two-panel
exports) to a temporary folder, then per round checks them with a new, empty cache (cold: decode, panel
detection, resize, write the .npz) and again with that cache filled (warm: the .npz read back, no image
decoded), at the sizes of configs/data/aptos.yaml. Prints the median time per case of each and the ratio.

    python benchmarks/bench_data_check.py [--cases 12] [--rounds 3] [--workers 0]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eyeoct.data.check import check_data  # noqa: E402
from eyeoct.data.phantom.export import write_phantom_dataset  # noqa: E402


def data_block(csv: Path, cache: Path, workers: int):
    return OmegaConf.create({
        "target": "eyeoct.data.datamodule.EyeOCTDataModule",
        "params": {"num_workers": workers,
                   "dataset_defaults": {"csv_path": str(csv), "cf_size": 256, "oct_size": [256, 384],
                                        "cache_dir": str(cache)},
                   "train": {"target": "eyeoct.data.datasets.AptosDataset", "params": {"split": "all"}}}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12, help="phantom eyes in the APTOS-layout copy")
    parser.add_argument("--rounds", type=int, default=3, help="cold + warm pairs (medians are shown)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes of the check")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        write_phantom_dataset(Path(tmp) / "phantom", args.cases, "aptos", val_fraction=0.0, two_panel_fraction=0.5)
        csv = Path(tmp) / "phantom" / "train" / "train.csv"
        for round_index in range(args.rounds):
            block = data_block(csv, Path(tmp) / f"cache{round_index}", args.workers)
            for times in (cold, warm):
                report = check_data(block, progress=False)
                assert not report.problems, report.problems
                times.append(report.seconds / args.cases)
    cold_ms, warm_ms = statistics.median(cold) * 1e3, statistics.median(warm) * 1e3
    print(f"data check of {args.cases} phantom eyes (APTOS layout, CF 512 -> 256, B-scans 496x768 JPEG -> 256x384, "
          f"workers={args.workers}), median of {args.rounds} rounds:")
    print(f"  cold cache (decode + store): {cold_ms:8.1f} ms/case")
    print(f"  warm cache (read .npz):      {warm_ms:8.1f} ms/case")
    print(f"  ratio cold / warm:           {cold_ms / warm_ms:8.1f}x")


if __name__ == "__main__":
    main()
