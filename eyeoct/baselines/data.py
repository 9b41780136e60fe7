"""The datasets the baselines need, taken from a data config (the `data:` block of the DataModule).

Training cases: the `train` dataset. Held-out cases: the `val` and `test` datasets (those present).
Oracle: a noise-free twin of each held-out dataset, i.e. the same node built with `noise_free=True`;
only datasets that accept `noise_free` (the phantom) have one.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Sequence

from omegaconf import DictConfig
from torch.utils.data import Dataset

from eyeoct.config import ConfigError, get_obj_from_str, instantiate_from_config, require, to_container

logger = logging.getLogger(__name__)

HELDOUT_PARTS = ("val", "test")


@dataclass
class BaselineData:
    """Training set, held-out sets (with their part names) and, for the phantom, noise-free twins."""

    train: Dataset
    heldout: list[Dataset]
    parts: list[str]
    noise_free: list[Dataset] | None


def noise_free_twin(datamodule, part: str) -> Dataset | None:
    """The `part` dataset rebuilt with `noise_free=True`, or None if its class has no such option."""
    node = to_container(datamodule.nodes[part])
    factory = get_obj_from_str(node["target"])
    if "noise_free" not in inspect.signature(factory).parameters:
        return None
    params = {**datamodule.dataset_defaults, **(node.get("params") or {}), "noise_free": True}
    return instantiate_from_config({"target": node["target"], "params": params})


def baseline_data(cfg: DictConfig, parts: Sequence[str] = HELDOUT_PARTS, want_oracle: bool = True) -> BaselineData:
    """Build the DataModule of `cfg.data` and take its train, held-out and (if possible) noise-free sets."""
    datamodule = instantiate_from_config(require(cfg, "data"))
    train = datamodule.build_dataset("train")
    if train is None:
        raise ConfigError("the data config has no data.params.train node: baselines are built from training cases")
    unknown = [p for p in parts if p not in datamodule.nodes or p == "train"]
    if unknown:
        raise ConfigError(f"held-out parts {unknown} are not val/test/predict parts of the data config")
    present = [p for p in parts if datamodule.build_dataset(p) is not None]
    if not present:
        raise ConfigError(f"the data config has none of the held-out parts {list(parts)} (data.params.<part>)")
    heldout = [datamodule.build_dataset(p) for p in present]
    twins = None
    if want_oracle:
        twins = [noise_free_twin(datamodule, p) for p in present]
        if any(t is None for t in twins):
            logger.info("oracle skipped: the held-out datasets cannot be rendered noise-free (phantom only)")
            twins = None
    return BaselineData(train=train, heldout=heldout, parts=present, noise_free=twins)
