"""Evaluate a prediction folder (<pred>/<stem>/<stem>_{0..5}.<ext>) against ground truth.

Example: eyeoct-evaluate --pred runs/x/preds --gt data/aptos/train/train.csv --metrics ssim,psnr,fvd
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from eyeoct.cli import add_print_config, print_config
from eyeoct.eval import EvaluationSettings, evaluate_folder
from eyeoct.eval.run import ALL_METRICS, DEFAULT_METRICS, default_output_dir
from eyeoct.logging_utils import setup_logging


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, help="prediction folder in the submission layout")
    parser.add_argument("--gt", required=True, help="ground-truth folder (same layout) or APTOS CSV with OCT_path")
    parser.add_argument("--gt-data-root", default=None, help="APTOS root if not the CSV's folder")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help=f"comma list of {','.join(ALL_METRICS)}")
    parser.add_argument("--fvd-weights", default=None, help="I3D weights (default: $EYEOCT_I3D_WEIGHTS)")
    parser.add_argument("--inception-weights", default=None, help="Inception-v3 weights (default: $EYEOCT_INCEPTION_WEIGHTS)")
    parser.add_argument("--lpips-backbone", default=None, help="AlexNet/VGG16 state dict (default: $EYEOCT_LPIPS_BACKBONE)")
    parser.add_argument("--lpips-linear", default=None, help="LPIPS linear weights (default: $EYEOCT_LPIPS_LINEAR)")
    parser.add_argument("--lpips-net", default="alex", choices=["alex", "vgg"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="new output folder (default: <pred>_eval/ beside --pred)")
    add_print_config(parser, "the folders and every evaluation setting")
    args = parser.parse_args(argv)
    setup_logging()
    settings = EvaluationSettings(
        metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()), fvd_weights=args.fvd_weights,
        inception_weights=args.inception_weights, lpips_backbone=args.lpips_backbone,
        lpips_linear=args.lpips_linear, lpips_net=args.lpips_net, device=args.device, gt_data_root=args.gt_data_root)
    if args.print_config:
        out = args.out or str(default_output_dir(Path(args.pred)))
        print_config({"pred": args.pred, "gt": args.gt, "out": out, "settings": dataclasses.asdict(settings)})
        return
    _, summary, out_dir = evaluate_folder(args.pred, args.gt, args.out, settings)
    headline = {k: summary[k]["mean"] for k in ("ssim", "psnr", "msssim", "lpips", "radial_pred", "radial_gt")
                if k in summary}
    for key, field in (("fvd", "fvd"), ("fid_kid", "fid"), ("fid_kid", "kid")):
        if key in summary:
            headline[field] = summary[key][field]
    print(json.dumps({"n_cases": summary["n_cases"], **headline, "out": str(out_dir)}, indent=1))
