"""Command-line plumbing shared by the training scripts: configs, overrides, run folder, resume."""
from __future__ import annotations

import argparse
import logging
import os
from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from eyeoct.config import load_config, save_config
from eyeoct.runs import CONFIG_NAME, RUN_DIR_ENV, claim_run_dir, create_run_dir, process_rank, resolve_resume

logger = logging.getLogger(__name__)


def parse_size(text: str) -> tuple[int, int]:
    """`448x320` -> (448, 320), width x height (an argparse `type=`)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT such as 448x320, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def training_arg_parser(description: str) -> argparse.ArgumentParser:
    """Parser with `--config` (repeatable), `--resume`, `--run-dir`, `--log-level` and overrides."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML config; several are merged in order")
    parser.add_argument("--resume", metavar="RUN_DIR|CKPT",
                        help="continue a run from its folder (last.ckpt) or from a checkpoint inside it")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="use this new folder for the run instead of runs/<name>/<timestamp> "
                             "(multi-node jobs: the same shared path on every node)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    return parser


def _run_dir_for_new_run(cfg: DictConfig, explicit: str | None) -> Path:
    inherited = os.environ.get(RUN_DIR_ENV)
    if process_rank() > 0 and inherited:
        return Path(inherited)  # a worker process launched by Lightning for the main process's run
    if explicit:
        return claim_run_dir(explicit)
    if process_rank() > 0:
        raise SystemExit("this is a worker rank of a multi-process job: pass the same --run-dir on every node")
    return create_run_dir(OmegaConf.select(cfg, "run.root", default="runs"),
                          OmegaConf.select(cfg, "run.name", default="run"))


def config_from_args(args: argparse.Namespace) -> tuple[DictConfig, Path, Path | None]:
    """Return `(config, run_dir, checkpoint_to_resume_or_None)` and write the config into the run folder."""
    if args.resume:
        run_dir, ckpt = resolve_resume(args.resume)
        cfg = load_config([run_dir / CONFIG_NAME, *args.config], args.overrides)
        if (args.config or args.overrides) and process_rank() == 0:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            save_config(cfg, run_dir / f"config.resumed-{stamp}.yaml")
        logger.info("resuming %s from %s", run_dir, ckpt)
        return cfg, run_dir, ckpt
    cfg = load_config(args.config, args.overrides)
    run_dir = _run_dir_for_new_run(cfg, args.run_dir)
    if process_rank() == 0:
        save_config(cfg, run_dir / CONFIG_NAME)
        logger.info("run folder: %s", run_dir)
    return cfg, run_dir, None
