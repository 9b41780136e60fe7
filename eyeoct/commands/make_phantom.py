"""Write a phantom dataset (paired CF photos and six B-scans) in the APTOS-2024 or folder layout.

Example: eyeoct-make-phantom --out data/phantom --n 200 --layout aptos --seed 0
"""
from __future__ import annotations

import argparse
import dataclasses

from eyeoct.cli import add_print_config, print_config
from eyeoct.data.phantom import PhantomConfig
from eyeoct.data.phantom.export import LAYOUTS, write_phantom_dataset
from eyeoct.logging_utils import setup_logging


def parse_hw(text: str) -> tuple[int, int]:
    """'496x768' -> (496, 768)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected HxW such as 496x768, got {text!r}") from err
    return h, w


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="new or empty output folder")
    parser.add_argument("--n", type=int, required=True, help="number of eyes")
    parser.add_argument("--layout", choices=LAYOUTS, default="aptos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cf-size", type=int, default=512, help="CF photo side in pixels")
    parser.add_argument("--oct-size", type=parse_hw, default=(496, 768), help="B-scan HxW")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="share of eyes in val/ (aptos layout)")
    parser.add_argument("--two-panel-fraction", type=float, default=0.3,
                        help="share of training eyes exported as infrared|B-scan two-panel images")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (it shows only on a terminal anyway)")
    add_print_config(parser, "the dataset settings and the full phantom configuration")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = PhantomConfig(cf_size=args.cf_size, oct_height=args.oct_size[0], oct_width=args.oct_size[1])
        if args.print_config:
            settings = {k: v for k, v in vars(args).items()
                        if k not in ("print_config", "cf_size", "oct_size", "quiet")}
            print_config({**settings, "phantom": dataclasses.asdict(config)})
            return None
        return write_phantom_dataset(args.out, args.n, args.layout, args.seed, config, args.val_fraction,
                                     args.two_panel_fraction, progress=not args.quiet)
    except (FileExistsError, ValueError) as err:
        parser.error(str(err))
