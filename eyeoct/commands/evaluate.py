"""Evaluate prediction folders (<pred>/<stem>/<stem>_{0..5}.<ext>) against ground truth in one comparison report.

Examples:
  eyeoct-evaluate --pred runs/x/preds --gt data/aptos/train/train.csv
  eyeoct-evaluate --pred model=preds --pred mean=baselines/mean --gt baselines/ground_truth \\
      --metrics ssim,psnr,thickness --axial-um 3.87
The first --pred is the reference of the paired differences. Without --metrics the defaults run, and those
that cannot (MS-SSIM below 112 px, FVD/FID/KID/LPIPS without local weights) are skipped with a log line.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from eyeoct.cli import add_print_config, print_config
from eyeoct.data.errors import DataError
from eyeoct.eval import (ALL_METRICS, DEFAULT_METRICS, CaseMismatchError, EvaluationSettings,
                         MetricUnavailableError, compare_methods)
from eyeoct.eval.run import METHOD_NAME, default_output_dir, json_safe
from eyeoct.logging_utils import setup_logging
from eyeoct.volume_io import VolumeIOError


def parse_pred(text: str) -> tuple[str, str]:
    """`NAME=DIR` or a plain `DIR` (named after the folder)."""
    name, sep, folder = text.partition("=")
    if sep and METHOD_NAME.match(name) and folder:
        return name, folder
    return Path(text).name or "prediction", text


def parse_slices(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(k) for k in text.split(",") if k.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"slices must be comma-separated numbers 0..5, got {text!r}") from None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, action="append", type=parse_pred, metavar="[NAME=]DIR",
                        help="prediction folder in the submission layout; repeat to compare methods")
    parser.add_argument("--gt", required=True, help="ground-truth folder (same layout) or APTOS CSV with OCT_path")
    parser.add_argument("--gt-data-root", default=None, help="APTOS root if not the CSV's folder")
    parser.add_argument("--metrics", default=None,
                        help=f"comma list of {','.join(ALL_METRICS)} (default: {','.join(DEFAULT_METRICS)}, "
                             "skipping those that cannot run)")
    parser.add_argument("--axial-um", type=float, default=None,
                        help="axial pixel size of the ground truth in micrometres (thickness in um; Spectralis 3.87)")
    parser.add_argument("--cf", default=None, metavar="DIR", help="CF photos <case id>.<ext> for the example rows")
    parser.add_argument("--examples", type=int, default=6, help="eyes shown as image rows (default 6)")
    parser.add_argument("--example-slices", type=parse_slices, default=(0,), help="slices shown per tile, e.g. 0,3")
    parser.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples B (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples and the random example eyes")
    parser.add_argument("--fvd-weights", default=None, help="I3D weights (default: $EYEOCT_I3D_WEIGHTS)")
    parser.add_argument("--inception-weights", default=None, help="Inception-v3 weights (default: $EYEOCT_INCEPTION_WEIGHTS)")
    parser.add_argument("--lpips-backbone", default=None, help="AlexNet/VGG16 state dict (default: $EYEOCT_LPIPS_BACKBONE)")
    parser.add_argument("--lpips-linear", default=None, help="LPIPS linear weights (default: $EYEOCT_LPIPS_LINEAR)")
    parser.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--out", default=None, help="new output folder (default: <first pred>_eval/ beside it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and only warnings in the log")
    add_print_config(parser, "the folders and every evaluation setting")
    args = parser.parse_args(argv)
    setup_logging("WARNING" if args.quiet else "INFO")
    names = [name for name, _ in args.pred]
    if len(set(names)) != len(names):
        parser.error(f"method names repeat ({', '.join(names)}): name them as --pred NAME=DIR")
    try:
        settings = EvaluationSettings(
            metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else None,
            fvd_weights=args.fvd_weights, inception_weights=args.inception_weights,
            lpips_backbone=args.lpips_backbone, lpips_linear=args.lpips_linear, lpips_net=args.lpips_net,
            device=args.device, gt_data_root=args.gt_data_root, axial_um=args.axial_um, cf_dir=args.cf,
            examples=args.examples, example_slices=args.example_slices, bootstrap=args.bootstrap,
            seed=args.seed, progress=not args.quiet)
        if args.print_config:
            out = args.out or str(default_output_dir(Path(args.pred[0][1])))
            print_config({"pred": dict(args.pred), "gt": args.gt, "out": out,
                          "settings": dataclasses.asdict(settings)})
            return
        comparison = compare_methods(dict(args.pred), args.gt, args.out, settings)
    except (MetricUnavailableError, CaseMismatchError, DataError, VolumeIOError, FileNotFoundError,
            FileExistsError, ValueError) as err:
        logging.getLogger("evaluate").debug("evaluation failed", exc_info=True)
        parser.exit(2, f"evaluate.py: error: {err}\n")
    headline = {name: {row["metric"]: row["mean"] for row in comparison.summary["tables"]["metrics"]
                       if row["method"] == name} for name in names}
    print(json.dumps(json_safe({"n_cases": comparison.summary["n_cases"], "means": headline,
                      "out": str(comparison.out_dir)}), indent=1))
