"""The Lightning DataModule of every run: datasets from `target`/`params` nodes, loaders from plain settings.

    data:
      target: eyeoct.data.datamodule.EyeOCTDataModule
      params:
        batch_size: 4
        num_workers: 2
        dataset_defaults: {cf_size: 256, oct_size: [256, 384]}   # merged into every dataset's params
        train: {target: eyeoct.data.datasets.AptosDataset, params: {csv_path: ..., split: train}}
        val:   {target: eyeoct.data.datasets.AptosDataset, params: {csv_path: ..., split: val}}
        test:    null   # optional, same form
        predict: null   # optional, e.g. APTOS val.csv with require_oct: false

Switching phantom -> APTOS -> folder means swapping this `data:` block (one file under configs/data/).
"""
from __future__ import annotations

import logging
from typing import Mapping

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset

from eyeoct.config import ConfigError, instantiate_from_config, to_container

logger = logging.getLogger(__name__)

_STAGE_PARTS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}


class EyeOCTDataModule(pl.LightningDataModule):
    """Train/val/test/predict datasets built lazily from config nodes, served as batches of sample dicts."""

    def __init__(self, train: Mapping | None = None, val: Mapping | None = None, test: Mapping | None = None,
                 predict: Mapping | None = None, dataset_defaults: Mapping | None = None, batch_size: int = 4,
                 eval_batch_size: int | None = None, num_workers: int = 0, pin_memory: bool = False,
                 persistent_workers: bool = True, drop_last: bool = False):
        super().__init__()
        self.nodes = {"train": train, "val": val, "test": test, "predict": predict}
        self.dataset_defaults = dict(to_container(dataset_defaults) or {})
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self.drop_last = bool(drop_last)
        self.datasets: dict[str, Dataset] = {}

    def build_dataset(self, part: str) -> Dataset | None:
        """The dataset of `part` (train/val/test/predict), built once; None if the config has no node for it."""
        if part not in self.datasets:
            node = to_container(self.nodes[part])
            if node is None:
                return None
            if not isinstance(node, dict) or "target" not in node:
                raise ConfigError(f"data.params.{part} must be a block with 'target:' and 'params:', got {node!r}")
            params = {**self.dataset_defaults, **(node.get("params") or {})}
            self.datasets[part] = instantiate_from_config({"target": node["target"], "params": params})
            logger.info("%s dataset: %s with %d cases", part, node["target"], len(self.datasets[part]))
        return self.datasets[part]

    def setup(self, stage: str | None = None) -> None:
        parts = _STAGE_PARTS.get(stage, tuple(self.nodes)) if stage else tuple(self.nodes)
        for part in parts:
            self.build_dataset(part)

    def _loader(self, part: str, train: bool) -> DataLoader | list:
        dataset = self.build_dataset(part)
        if dataset is None:
            if train:
                raise ConfigError("data.params.train is missing: training needs a train dataset node")
            return []
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=self.drop_last and train,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader | list:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader | list:
        return self._loader("predict", train=False)
