"""Train the stage-2 ControlLDM (CF -> six OCT B-scans in the stage-1 latent space): see README "Stage 2".

    python scripts/train_dm.py --config configs/dm/phantom_demo.yaml model.params.first_stage=RUN_DIR/export
    python scripts/train_dm.py --resume RUN_DIR|CKPT
"""
from __future__ import annotations

from eyeoct.cli import config_from_args, training_arg_parser
from eyeoct.logging_utils import setup_logging
from eyeoct.training import run_training


def main(argv: list[str] | None = None) -> None:
    parser = training_arg_parser("Train the stage-2 latent diffusion model (ControlLDM) of EyeOCT.")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    cfg, run_dir, ckpt = config_from_args(args)
    run_training(cfg, run_dir, ckpt)


if __name__ == "__main__":
    main()
