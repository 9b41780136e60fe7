"""Train the stage-1 KL autoencoder, or export a trained run: see README "Stage 1".

    eyeoct-train-ae --config ae/phantom_demo [key.sub=value ...]
    eyeoct-train-ae --resume RUN_DIR|CKPT
    eyeoct-train-ae --export-only RUN_DIR|CKPT [--export-batches N]
"""
from __future__ import annotations

import argparse
import logging

from eyeoct.ae_export import export_run
from eyeoct.cli import training_arg_parser
from eyeoct.commands.train_common import train_from_args
from eyeoct.logging_utils import setup_logging

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = training_arg_parser("Train the stage-1 autoencoder (AutoencoderKL) of EyeOCT.")
    parser.epilog, parser.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    parser.add_argument("--export-only", metavar="RUN_DIR|CKPT",
                        help="do not train: measure the scale factor and export this run's checkpoint")
    parser.add_argument("--export-batches", type=int, help="training batches for the scale factor (export only)")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.export_only:
        logger.info("exported to %s", export_run(args.export_only, args.export_batches))
        return
    train_from_args(args)
