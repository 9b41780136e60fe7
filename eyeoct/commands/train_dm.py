"""Train the stage-2 ControlLDM (CF -> six OCT B-scans in the stage-1 latent space), or export a trained run:
see README "Stage 2".

    eyeoct-train-dm --config dm/phantom_demo model.params.first_stage=AE_RUN_DIR/export
    eyeoct-train-dm --resume RUN_DIR|CKPT
    eyeoct-train-dm --export-only RUN_DIR [--ckpt CKPT] [--no-ema]
"""
from __future__ import annotations

import argparse

from eyeoct.cli import training_arg_parser
from eyeoct.commands.train_common import train_from_args
from eyeoct.dm_export import export_run
from eyeoct.logging_utils import setup_logging


def main(argv: list[str] | None = None) -> None:
    parser = training_arg_parser("Train the stage-2 latent diffusion model (ControlLDM) of EyeOCT.")
    parser.epilog, parser.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    parser.add_argument("--export-only", metavar="RUN_DIR|CKPT",
                        help="do not train: write model.safetensors + model.yaml of this run to a new "
                             "RUN_DIR/export*/ folder")
    parser.add_argument("--ckpt", metavar="CKPT", help="checkpoint to export (default: the run's last.ckpt)")
    parser.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA ones")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.export_only:
        print(export_run(args.export_only, args.ckpt, use_ema=not args.no_ema))
        return
    if args.ckpt or args.no_ema:
        parser.error("--ckpt and --no-ema go with --export-only")
    train_from_args(args)
