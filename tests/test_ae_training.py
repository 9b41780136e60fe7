"""Stage-1 training through scripts/train_ae.py on the tiny config: learning, TensorBoard, checkpoints,
resume (same step, same optimiser and scheduler state) and the export at the end of training."""
import shutil

import pytest
import pytorch_lightning as pl
import torch
import yaml

from ae_helpers import (TINY_CONFIG, adam_steps, load_checkpoint, only_run_dir,
                        tensorboard_events, train_ae_main)
from eyeoct.config import instantiate_from_config, load_config
from eyeoct.metrics import psnr_per_volume
from eyeoct.training import build_trainer
from ldm.models.autoencoder_export import load_exported_autoencoder

MAX_STEPS, DISC_START = 40, 4  # as in configs/ae/tiny_test.yaml


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ae_runs")
    train_ae_main()(["--config", str(TINY_CONFIG), f"run.root={root}", f"trainer.max_steps={MAX_STEPS}"])
    return only_run_dir(root)


def untrained_val_psnr(cfg) -> float:
    pl.seed_everything(int(cfg.run.seed))  # the same initial weights as the run
    model = instantiate_from_config(cfg.model).eval()
    datamodule = instantiate_from_config(cfg.data)
    datamodule.setup("fit")
    with torch.no_grad():
        values = [psnr_per_volume(model(b["oct"], sample_posterior=False)[0].clamp(-1, 1), b["oct"], data_range=2.0)
                  for b in datamodule.val_dataloader()]
    return torch.cat(values).mean().item()


def test_training_lowers_loss_and_raises_psnr(tiny_run):
    events = tensorboard_events(tiny_run)
    l1 = [e.value for e in events.Scalars("train/l1")]
    assert sum(l1[-3:]) / 3 < 0.6 * sum(l1[:3]) / 3, l1
    psnr = events.Scalars("val/psnr")
    assert [e.step for e in psnr] == [19, 39]  # after 20 and 40 batches
    untrained = untrained_val_psnr(load_config([tiny_run / "config.yaml"]))
    assert psnr[-1].value > untrained + 6.0, (untrained, [e.value for e in psnr])
    assert psnr[-1].value > 16.0


def test_tensorboard_holds_scalars_and_images(tiny_run):
    events = tensorboard_events(tiny_run)
    scalars = set(events.Tags()["scalars"])
    expected = {"train/total", "train/l1", "train/ssim", "train/kl", "train/g", "train/d", "train/d_weight",
                "lr/autoencoder", "lr/discriminator", "val/psnr", "val/ssim", "val/l1"}
    expected |= {f"val/ssim_slice{k}" for k in range(6)}
    assert expected <= scalars, expected - scalars
    slices = [events.Scalars(f"val/ssim_slice{k}")[-1].value for k in range(6)]
    assert events.Scalars("val/ssim")[-1].value == pytest.approx(sum(slices) / 6, abs=1e-5)
    images = events.Images("train/reconstruction")
    assert [im.step for im in images] == [20, 40]
    # 2 cases x (inputs, reconstructions) rows of six 32x32 slices, 2-pixel padding
    assert (images[-1].width, images[-1].height) == (6 * 34 + 2, 4 * 34 + 2)
    assert sorted(p.name for p in (tiny_run / "samples").glob("*.png")) == [
        "reconstruction_step0000020.png", "reconstruction_step0000040.png"]


def test_checkpoints_count_generator_steps(tiny_run):
    checkpoints = tiny_run / "checkpoints"
    assert len(list(checkpoints.glob("best-*.ckpt"))) == 1
    ckpt = load_checkpoint(checkpoints / "last.ckpt")
    assert ckpt["global_step"] == MAX_STEPS
    ae_state, disc_state = ckpt["optimizer_states"]
    assert adam_steps(ae_state) == {MAX_STEPS}
    assert adam_steps(disc_state) == {MAX_STEPS - DISC_START}
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [MAX_STEPS, MAX_STEPS - DISC_START]


class ResumeProbe(pl.Callback):
    """Records the step and optimiser/scheduler states at the first batch after resuming."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "step"):
            self.step = trainer.global_step
            self.optimizers = [{index: {name: t.clone() for name, t in state.items()}
                                for index, state in opt.state_dict()["state"].items()} for opt in trainer.optimizers]
            self.schedulers = [cfg.scheduler.last_epoch for cfg in trainer.lr_scheduler_configs]


def test_resume_restores_step_optimisers_and_schedulers(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    ckpt = load_checkpoint(run / "checkpoints" / "last.ckpt")
    cfg = load_config([run / "config.yaml"], [f"trainer.max_steps={MAX_STEPS + 4}"])
    trainer = build_trainer(cfg, run)
    probe = ResumeProbe()
    trainer.callbacks.append(probe)
    trainer.fit(instantiate_from_config(cfg.model), datamodule=instantiate_from_config(cfg.data),
                ckpt_path=run / "checkpoints" / "last.ckpt")
    assert probe.step == MAX_STEPS
    assert probe.schedulers == [MAX_STEPS, MAX_STEPS - DISC_START]
    for restored, saved in zip(probe.optimizers, ckpt["optimizer_states"]):
        assert restored.keys() == saved["state"].keys()
        for index, state in saved["state"].items():
            assert torch.equal(restored[index]["exp_avg"], state["exp_avg"])
            assert torch.equal(restored[index]["exp_avg_sq"], state["exp_avg_sq"])
    assert trainer.global_step == MAX_STEPS + 4


def test_export_at_end_matches_last_checkpoint(tiny_run):
    model, scale_factor = load_exported_autoencoder(tiny_run / "export")
    spec = yaml.safe_load((tiny_run / "export" / "autoencoder.yaml").read_text())
    assert spec["n_batches_measured"] == 2 and spec["scale_factor"] == scale_factor and 0.05 < scale_factor < 20
    cfg = load_config([tiny_run / "config.yaml"])
    reference = instantiate_from_config(cfg.model)
    reference.load_state_dict(load_checkpoint(tiny_run / "checkpoints" / "last.ckpt")["state_dict"])
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.decode(z), reference.eval().decode(z))


def test_export_only_rewrites_export_from_checkpoint(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    shutil.rmtree(run / "export")
    train_ae_main()(["--export-only", str(run), "--export-batches", "1"])
    model, scale_factor = load_exported_autoencoder(run / "export")
    assert yaml.safe_load((run / "export" / "autoencoder.yaml").read_text())["n_batches_measured"] == 1
    assert scale_factor > 0 and not model.training


def test_accumulation_counts_one_step_per_window(tmp_path):
    train_ae_main()(["--config", str(TINY_CONFIG), f"run.root={tmp_path}", "trainer.max_steps=3",
                     "model.params.accumulate_grad_batches=2", "checkpoint.every_n_train_steps=3", "callbacks=[]"])
    ckpt = load_checkpoint(only_run_dir(tmp_path) / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 3
    assert ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["completed"] == 6
    assert adam_steps(ckpt["optimizer_states"][0]) == {3}


def test_trainer_accumulation_is_rejected_naming_the_model_key(tmp_path):
    with pytest.raises(ValueError, match="model.params.accumulate_grad_batches"):
        train_ae_main()(["--config", str(TINY_CONFIG), f"run.root={tmp_path}", "trainer.accumulate_grad_batches=2"])


def test_cli_resume_in_place_continues_counting(tiny_run):
    """Runs last: it resumes the module's run folder in place (20 more steps, validated and checkpointed)."""
    more = MAX_STEPS + 20
    train_ae_main()(["--resume", str(tiny_run), f"trainer.max_steps={more}"])
    ckpt = load_checkpoint(tiny_run / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == more
    ae_state, disc_state = ckpt["optimizer_states"]
    assert adam_steps(ae_state) == {more} and adam_steps(disc_state) == {more - DISC_START}
    assert len(list(tiny_run.glob("config.resumed-*.yaml"))) == 1
    assert [e.step for e in tensorboard_events(tiny_run).Scalars("val/psnr")] == [19, 39, 59]
