"""Command-line plumbing shared by the commands: configs, overrides, `--print-config`, run folder, resume."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

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


CONFIG_HELP = ("YAML config: a file path, or a packaged name such as dm/phantom_demo (an existing file wins); "
               "several are merged in order")


def add_print_config(parser: argparse.ArgumentParser, what: str = "the merged config (after includes and overrides)"
                     ) -> None:
    """Add `--print-config`: print `what` as YAML and exit 0 without writing anything."""
    parser.add_argument("--print-config", action="store_true", help=f"print {what} as YAML and exit")


def print_config(cfg: DictConfig | Mapping[str, Any]) -> None:
    """Write a config (or a plain mapping of settings) to stdout as YAML, interpolations resolved where they can be."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    try:
        text = OmegaConf.to_yaml(node, resolve=True)
    except OmegaConfBaseException as err:
        logger.warning("printing the config unresolved: %s", err)
        text = OmegaConf.to_yaml(node)
    sys.stdout.write(text)


def training_arg_parser(description: str) -> argparse.ArgumentParser:
    """Parser with `--config` (repeatable), `--resume`, `--run-dir`, `--print-config`, `--log-level` and overrides."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", action="append", default=[], metavar="FILE|NAME", help=CONFIG_HELP)
    parser.add_argument("--resume", metavar="RUN_DIR|CKPT",
                        help="continue a run from its folder (last.ckpt) or from a checkpoint inside it")
    parser.add_argument("--run-dir", metavar="DIR",
                        help="use this new folder for the run instead of runs/<name>/<timestamp> "
                             "(multi-node jobs: the same shared path on every node)")
    add_print_config(parser)
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


def load_training_config(args: argparse.Namespace) -> tuple[DictConfig, Path | None, Path | None]:
    """`(config, run_dir, checkpoint)` of a resumed run, or `(config, None, None)` of a new one; writes nothing."""
    if args.resume:
        run_dir, ckpt = resolve_resume(args.resume)
        return load_config([run_dir / CONFIG_NAME, *args.config], args.overrides), run_dir, ckpt
    return load_config(args.config, args.overrides), None, None


def prepare_run_dir(cfg: DictConfig, args: argparse.Namespace, run_dir: Path | None,
                    ckpt: Path | None) -> tuple[Path, Path | None]:
    """The run folder of `load_training_config`'s result, created (new run) and given its config file."""
    if run_dir is not None:
        if (args.config or args.overrides) and process_rank() == 0:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            save_config(cfg, run_dir / f"config.resumed-{stamp}.yaml")
        logger.info("resuming %s from %s", run_dir, ckpt)
        return run_dir, ckpt
    run_dir = _run_dir_for_new_run(cfg, args.run_dir)
    if process_rank() == 0:
        save_config(cfg, run_dir / CONFIG_NAME)
        logger.info("run folder: %s", run_dir)
    return run_dir, None
