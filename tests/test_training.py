"""The shared training builder: run folder contents, final checkpoint, atomic writes, resume."""
import torch
from omegaconf import OmegaConf

from eyeoct.cli import training_arg_parser
from eyeoct.training import AtomicCheckpointIO, run_training
from script_helpers import config_from_args


def boring_config(tmp_path, max_steps):
    return f"""
run: {{name: boring, root: {tmp_path / 'runs'}, seed: 0}}
data: {{target: pytorch_lightning.demos.boring_classes.BoringDataModule}}
model: {{target: pytorch_lightning.demos.boring_classes.BoringModel}}
trainer: {{max_steps: {max_steps}, accelerator: cpu, devices: 1, val_check_interval: 1000,
          check_val_every_n_epoch: null, enable_progress_bar: false, enable_model_summary: false,
          log_every_n_steps: 1}}
"""


def test_run_writes_config_events_and_a_final_checkpoint_then_resumes(tmp_path):
    cfg_file = tmp_path / "boring.yaml"
    cfg_file.write_text(boring_config(tmp_path, max_steps=7))
    parser = training_arg_parser("test")
    cfg, run_dir, ckpt = config_from_args(parser.parse_args(["--config", str(cfg_file)]))
    trainer, _ = run_training(cfg, run_dir, ckpt)
    assert trainer.global_step == 7
    last = run_dir / "checkpoints" / "last.ckpt"
    # No validation ran (val_check_interval 1000), yet the final step is saved.
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 7
    assert not [p for p in (run_dir / "checkpoints").iterdir() if ".tmp" in p.name]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert OmegaConf.load(run_dir / "config.yaml").trainer.max_steps == 7

    cfg2, run_dir2, ckpt2 = config_from_args(parser.parse_args(["--resume", str(run_dir), "trainer.max_steps=12"]))
    trainer2, _ = run_training(cfg2, run_dir2, ckpt2)
    assert run_dir2 == run_dir and trainer2.global_step == 12
    assert torch.load(last, weights_only=True)["global_step"] == 12
    assert not (run_dir / "checkpoints" / "last-v1.ckpt").exists()


def test_atomic_checkpoint_io_round_trip_and_missing_file(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "sub" / "x.ckpt"
    io.save_checkpoint({"w": torch.arange(3.0), "step": 4}, path)
    loaded = io.load_checkpoint(path)
    assert loaded["step"] == 4 and torch.equal(loaded["w"], torch.arange(3.0))
    assert [p.name for p in path.parent.iterdir()] == ["x.ckpt"]
    try:
        io.load_checkpoint(tmp_path / "nope.ckpt")
    except FileNotFoundError as err:
        assert "nope.ckpt" in str(err)
    else:
        raise AssertionError("a missing checkpoint must raise")


def test_validation_inside_an_accumulation_window_is_refused(tmp_path):
    from eyeoct.config import ConfigError
    from eyeoct.training import build_trainer

    cfg = OmegaConf.create({"trainer": {"val_check_interval": 5, "accumulate_grad_batches": 2}})
    try:
        build_trainer(cfg, tmp_path)
    except ConfigError as err:
        assert "val_check_interval=5" in str(err) and "multiple of trainer.accumulate_grad_batches=2" in str(err)
    else:
        raise AssertionError("validation inside an accumulation window must be refused")
    cfg = OmegaConf.create({"trainer": {"use_distributed_sampler": True}})
    try:
        build_trainer(cfg, tmp_path, shards_its_data=True)
    except ConfigError as err:
        assert "shards the data over the ranks itself" in str(err)
    else:
        raise AssertionError("use_distributed_sampler must be refused with EyeOCTDataModule")
