"""Read every case of every part (train/val/test/predict) of a data config once, fill the disk cache, and
list every unreadable or inconsistent input, before any training: see README "Data".

    eyeoct-prepare-data --config data/aptos data.params.dataset_defaults.csv_path=/data/aptos/train/train.csv
    eyeoct-prepare-data --config dm/aptos_cldm            # a stage config: its data: block

Exit status 0 when every case loads, 1 (with the list of files and reasons on stderr) otherwise.
"""
from __future__ import annotations

import argparse

from eyeoct.cli import CONFIG_HELP, add_print_config, print_config
from eyeoct.config import SOURCES_KEY, ConfigError, load_config, require
from eyeoct.data.check import DataCheckReport, check_data
from eyeoct.data.errors import DataProblems
from eyeoct.logging_utils import setup_logging


def main(argv: list[str] | None = None) -> DataCheckReport | None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, metavar="FILE|NAME", help=CONFIG_HELP)
    add_print_config(parser)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = load_config(args.config, args.overrides)
        if args.print_config:
            print_config(cfg)
            return None
        report = check_data(require(cfg, "data"))
        print(report.summary())
        for folder in report.cache_folders:
            print(f"cache: {folder}")
        report.raise_if_problems(f"the data of {', '.join(cfg[SOURCES_KEY])}")
    except (ConfigError, DataProblems) as err:
        raise SystemExit(f"prepare_data: error: {err}") from err
    return report
