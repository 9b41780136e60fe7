"""Train the stage-1 KL autoencoder, or export a trained run: see README "Stage 1".

    python scripts/train_ae.py --config configs/ae/phantom_demo.yaml [key.sub=value ...]
    python scripts/train_ae.py --resume RUN_DIR|CKPT
    python scripts/train_ae.py --export-only RUN_DIR|CKPT [--export-batches N]
"""
from __future__ import annotations

import logging

from eyeoct.ae_export import export_run
from eyeoct.cli import config_from_args, training_arg_parser
from eyeoct.logging_utils import setup_logging
from eyeoct.training import run_training

logger = logging.getLogger("train_ae")


def main(argv: list[str] | None = None) -> None:
    parser = training_arg_parser("Train the stage-1 autoencoder (AutoencoderKL) of EyeOCT.")
    parser.add_argument("--export-only", metavar="RUN_DIR|CKPT",
                        help="do not train: measure the scale factor and export this run's checkpoint")
    parser.add_argument("--export-batches", type=int, help="training batches for the scale factor (export only)")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    if args.export_only:
        logger.info("exported to %s", export_run(args.export_only, args.export_batches))
        return
    cfg, run_dir, ckpt = config_from_args(args)
    run_training(cfg, run_dir, ckpt)


if __name__ == "__main__":
    main()
