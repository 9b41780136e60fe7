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

The training order is a `ResumableBatchSampler` (eyeoct/data/sampler.py) seeded by the run seed and sharded
over the ranks by the module itself; its position (pass and sample offset) is saved in every checkpoint,
so a resumed run continues mid-epoch at the right batch. Evaluation loaders are sharded in order.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Mapping

import pytorch_lightning as pl
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from eyeoct.config import ConfigError, instantiate_from_config, to_container
from eyeoct.data.sampler import ResumableBatchSampler, SamplerPosition

logger = logging.getLogger(__name__)

_STAGE_PARTS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}


class EyeOCTDataModule(pl.LightningDataModule):
    """Train/val/test/predict datasets built lazily from config nodes, served as batches of sample dicts.

    `run_seed` (set from `run.seed` by the training builder) seeds the training order.
    """

    run_seed: int = 0

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
        self.train_sampler: ResumableBatchSampler | None = None
        self._resume_state: dict[str, Any] | None = None

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

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _eval_loader(self, part: str) -> DataLoader | list:
        dataset = self.build_dataset(part)
        if dataset is None:
            return []
        rank, world_size = self._ranks()
        sampler = DistributedSampler(dataset, world_size, rank, shuffle=False) if world_size > 1 else None
        return DataLoader(dataset, batch_size=self.eval_batch_size, sampler=sampler, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.persistent_workers)

    def train_dataloader(self) -> DataLoader:
        dataset = self.build_dataset("train")
        if dataset is None:
            raise ConfigError("data.params.train is missing: training needs a train dataset node")
        rank, world_size = self._ranks()
        self.train_sampler = ResumableBatchSampler(len(dataset), self.batch_size, self.run_seed, rank, world_size,
                                                   self.drop_last, self._resume_position(world_size))
        return DataLoader(dataset, batch_sampler=self.train_sampler, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.persistent_workers)

    def _resume_position(self, world_size: int) -> SamplerPosition | None:
        """The saved data-order position, with a log line saying what resuming does to the order."""
        state = self._resume_state
        if state is None:
            return None
        position = SamplerPosition(**state["position"])
        logger.info("data order: resuming pass %d at sample %d (order seeded by run seed %d)", position.epoch,
                    position.offset, state["seed"])
        if state["seed"] != self.run_seed:
            logger.warning("data order: the checkpoint's run seed %d differs from this run's %d: pass %d is "
                           "reshuffled from sample %d on", state["seed"], self.run_seed, position.epoch,
                           position.offset)
        saved = (state["world_size"], state["batch_size"])
        if saved != (world_size, self.batch_size):
            logger.warning("data order: saved by %d rank(s) x batch %d, resumed with %d rank(s) x batch %d: the "
                           "same order continues (no sample repeated or skipped), grouped into global batches of "
                           "%d instead of %d", *saved, world_size, self.batch_size, world_size * self.batch_size,
                           saved[0] * saved[1])
        return position

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Counts the training batches handed to a training step (not those merely prefetched)."""
        if self.trainer is not None and self.trainer.training and self.train_sampler is not None:
            self.train_sampler.note_consumed()
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The training order's position, saved in every checkpoint."""
        if self.train_sampler is None:
            return {}
        _, world_size = self._ranks()
        return {"position": asdict(self.train_sampler.position()), "seed": self.run_seed,
                "world_size": world_size, "batch_size": self.batch_size}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume_state = dict(state_dict) if state_dict.get("position") else None

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader | list:
        return self._eval_loader("predict")
