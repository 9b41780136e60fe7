"""Reference predictions for the held-out cases of a data config, in the submission layout.

Writes DIR/<method>/<case>/<case>_{0..5}.<ext> (+ baseline.json) for mean, nn_pixel, nn_encoder, oracle
and DIR/ground_truth/, so that `scripts/evaluate.py --pred DIR/<method> --gt DIR/ground_truth` scores one.

Example: eyeoct-baselines --data-config data/phantom_demo --out runs/baselines_demo
"""
from __future__ import annotations

import argparse

from eyeoct.baselines import (BASELINE_METHODS, BaselineError, BaselineSettings, baseline_data, check_methods,
                              create_empty_output_dir, write_baselines)
from eyeoct.baselines.encoder import DEFAULT_ENCODER_CONFIG
from eyeoct.cli import CONFIG_HELP, add_print_config, parse_size, print_config
from eyeoct.config import ConfigError, load_config
from eyeoct.data.errors import DataError
from eyeoct.logging_utils import setup_logging


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-config", action="append", required=True, metavar="FILE|NAME",
                        help=f"data config: {CONFIG_HELP}")
    parser.add_argument("--out", required=True, help="new (or empty) output folder")
    parser.add_argument("--which", default=",".join(BASELINE_METHODS),
                        help=f"comma list of {','.join(BASELINE_METHODS)}")
    parser.add_argument("--parts", default="val,test", help="held-out parts of the data config (val,test,predict)")
    parser.add_argument("--cf-encoder-config", default=None,
                        help=f"YAML with a cf_encoder: block (default: the packaged {DEFAULT_ENCODER_CONFIG}), "
                             "or the stage-2 config of --cf-encoder-ckpt (default: the run folder's config.yaml)")
    parser.add_argument("--cf-encoder-ckpt", default=None,
                        help="stage-2 run folder or ControlLDM checkpoint: use its trained CF encoder (EMA weights)")
    parser.add_argument("--size", type=parse_size, default=None,
                        help="written slice size WIDTHxHEIGHT, e.g. 448x320 (default: the data's size)")
    parser.add_argument("--format", default="png", choices=["png", "jpg"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="seed of a randomly initialised CF encoder")
    add_print_config(parser, "the merged data config and the baseline settings")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--quiet", action="store_true", help="no progress bars (they show only on a terminal anyway)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="data config overrides")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        if args.print_config:
            print_settings(args)
            return
        folders = build(args)
    except (BaselineError, ConfigError, DataError, FileNotFoundError) as err:
        raise SystemExit(f"baselines: error: {err}") from err
    for name, folder in folders.items():
        print(f"{name}: {folder}")


def print_settings(args: argparse.Namespace) -> None:
    """The merged data config and a `baselines:` block with every option (the CF-encoder config named)."""
    settings = {k: v for k, v in vars(args).items() if k not in ("print_config", "log_level", "overrides", "quiet")}
    settings["cf_encoder_config"] = args.cf_encoder_config or (None if args.cf_encoder_ckpt else DEFAULT_ENCODER_CONFIG)
    print_config({**load_config(args.data_config, args.overrides), "baselines": settings})


def build(args: argparse.Namespace) -> dict:
    """Load the data config as the arguments say, then write every baseline."""
    which = check_methods([m.strip() for m in args.which.split(",") if m.strip()])
    create_empty_output_dir(args.out)  # refuse a non-empty folder before any work
    cfg = load_config(args.data_config, args.overrides)
    data = baseline_data(cfg, [p.strip() for p in args.parts.split(",") if p.strip()], want_oracle="oracle" in which)
    settings = BaselineSettings(which=which, size=args.size, ext=args.format, batch_size=args.batch_size,
                                num_workers=args.num_workers, progress=not args.quiet,
                                info={"data_config": list(args.data_config), "overrides": list(args.overrides)})
    return write_baselines(data, args.out, settings, args.cf_encoder_config, args.cf_encoder_ckpt, args.seed)
