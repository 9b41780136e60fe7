"""What both training commands do: load the config, check the data, create the run folder, fit."""
from __future__ import annotations

import argparse
import logging
import os

from omegaconf import DictConfig, OmegaConf

from eyeoct.cli import load_training_config, prepare_run_dir, print_config
from eyeoct.config import SOURCES_KEY, require
from eyeoct.data.check import check_data
from eyeoct.data.errors import DataProblems
from eyeoct.runs import RUN_DIR_ENV, process_rank
from eyeoct.training import run_training

logger = logging.getLogger(__name__)

CHECK_KEY = "data.check_on_start"


def check_data_before_training(cfg: DictConfig) -> None:
    """Read every case of the data config (see `eyeoct.data.check`) and stop with the list of unusable inputs.

    Skipped when `data.check_on_start` is false, and in worker processes that Lightning started for a run
    whose rank 0 has checked already; a rank started by an outside launcher (torchrun, SLURM) checks by
    itself, so no rank waits for a rank 0 that stopped.
    """
    if not OmegaConf.select(cfg, CHECK_KEY, default=True):
        logger.info("data check off (%s=false)", CHECK_KEY)
        return
    if process_rank() > 0 and os.environ.get(RUN_DIR_ENV):
        return
    report = check_data(require(cfg, "data"))
    try:
        report.raise_if_problems(f"the data of {', '.join(OmegaConf.select(cfg, SOURCES_KEY) or [])}")
    except DataProblems as err:
        raise SystemExit(f"error: {err}\nNothing was trained. Fix or remove these inputs (scripts/prepare_data.py "
                         f"checks again), or skip the check with {CHECK_KEY}=false.") from err


def train_from_args(args: argparse.Namespace) -> None:
    """`--print-config`, or data check, run folder and `run_training` for parsed training arguments."""
    cfg, run_dir, ckpt = load_training_config(args)
    if args.print_config:
        print_config(cfg)
        return
    check_data_before_training(cfg)
    run_dir, ckpt = prepare_run_dir(cfg, args, run_dir, ckpt)
    run_training(cfg, run_dir, ckpt)
