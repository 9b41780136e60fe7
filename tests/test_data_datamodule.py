"""The DataModule built from the shipped data configs: batches, config switching, disjoint held-out eyes."""
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from data_synthetic import colour_fundus, save, write_aptos_layout
from eyeoct.config import ConfigError, instantiate_from_config, load_config
from eyeoct.data.datamodule import EyeOCTDataModule
from script_helpers import REPO_ROOT

CONFIGS = REPO_ROOT / "configs" / "data"


def _datamodule(name, *overrides):
    return instantiate_from_config(load_config([CONFIGS / name], overrides).data)


def test_tiny_phantom_batches_follow_the_contract():
    dm = _datamodule("phantom_tiny.yaml")
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["oct"].shape == (4, 6, 32, 32) and batch["cf"].shape == (4, 3, 32, 32)
    assert batch["oct"].dtype == torch.float32 and -1 <= batch["oct"].min() and batch["oct"].max() <= 1
    assert len(batch["id"]) == 4 and batch["cf_path"] == [""] * 4
    val_ids = [i for b in dm.val_dataloader() for i in b["id"]]
    assert val_ids == [f"phantom-0-{i:06d}" for i in range(1000, 1004)]


def test_demo_config_holds_out_disjoint_eyes():
    dm = _datamodule("phantom_demo.yaml", "data.params.dataset_defaults.cache_dir=null")
    ids = {part: {dm.build_dataset(part).case_id(i) for i in range(len(dm.build_dataset(part)))}
           for part in ("train", "val", "test")}
    assert len(ids["train"]) == 256 and len(ids["val"]) == 16 and len(ids["test"]) == 32
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]


def test_switching_to_aptos_and_folder_is_a_config_change(tmp_path):
    csv = write_aptos_layout(tmp_path / "aptos", patients=4, cf_size=24, oct_hw=(16, 24))
    (tmp_path / "aptos" / "val.csv").write_text("PID,CF_path\n000001,000001-61L.png\n")
    dm = _datamodule("aptos.yaml", f"data.params.dataset_defaults.csv_path={csv}", "data.params.num_workers=0",
                     f"data.params.dataset_defaults.cache_dir={tmp_path / 'cache'}",
                     "data.params.dataset_defaults.oct_size=[16,24]", "data.params.dataset_defaults.cf_size=16",
                     "data.params.dataset_defaults.val_fraction=0.25", "data.params.batch_size=2",
                     f"data.params.predict.params.csv_path={tmp_path / 'aptos' / 'val.csv'}", "data.params.pin_memory=false")
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 6 and len(dm.datasets["val"]) == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["oct"].shape == (2, 6, 16, 24) and batch["cf"].shape == (2, 3, 16, 16)
    dm.setup("predict")
    predicted = next(iter(dm.predict_dataloader()))
    assert "oct" not in predicted and predicted["id"] == ["000001-61L"]

    for name in ("a_L", "a_R", "b_L", "c_R"):
        save(colour_fundus(20, seed=1), tmp_path / "eyes" / name / "cf.png")
        for k in range(6):
            save(np.full((12, 18), 30 * k, np.uint8), tmp_path / "eyes" / name / f"oct_{k}.png")
    dm = _datamodule("folder.yaml", f"data.params.dataset_defaults.root={tmp_path / 'eyes'}", "data.params.num_workers=0",
                     "data.params.dataset_defaults.cache_dir=null", "data.params.dataset_defaults.oct_size=[12,18]",
                     "data.params.dataset_defaults.patient_separator=_", "data.params.dataset_defaults.val_fraction=0.34",
                     "data.params.batch_size=2", "data.params.pin_memory=false")
    dm.setup("fit")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 4
    assert next(iter(dm.train_dataloader()))["oct"].shape == (2, 6, 12, 18)


def test_bad_dataset_node_and_missing_train_are_clear_errors():
    dm = _datamodule("phantom_tiny.yaml", "data.params.train=null")
    with pytest.raises(ConfigError, match="train is missing"):
        dm.train_dataloader()
    dm = EyeOCTDataModule(val={"params": {"num_cases": 2}})
    with pytest.raises(ConfigError, match="data.params.val must be a block"):
        dm.setup("validate")


class _MeanModel(pl.LightningModule):
    """Smallest model that consumes the batches: predicts the mean OCT from the mean CF."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def training_step(self, batch, _):
        self.seen.extend(batch["id"])
        return ((self.scale * batch["cf"].mean() - batch["oct"].mean()) ** 2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_with_worker_processes(tmp_path):
    pl.seed_everything(0)
    dm = _datamodule("phantom_tiny.yaml", "data.params.num_workers=1", "data.params.val=null")
    model = _MeanModel()
    trainer = pl.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3 and len(model.seen) == 12
    assert set(model.seen) == {f"phantom-0-{i:06d}" for i in range(8)}
