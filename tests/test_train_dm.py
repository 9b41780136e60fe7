"""scripts/train_dm.py end to end on the tiny phantom: run folder, grids, logged metrics, loss that goes down."""
import importlib.util

import numpy as np
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cldm.cldm import ControlLDM
from eyeoct.config import instantiate_from_config, load_config

TINY_CONFIG = "configs/dm/tiny_test.yaml"


def load_script(repo_root):
    spec = importlib.util.spec_from_file_location("train_dm", repo_root / "scripts" / "train_dm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fixed_loss(model, batches, seeds=(0, 1, 2)) -> float:
    """Seeded diffusion loss (noise, timesteps) with the condition on, averaged over batches and seeds."""
    model.eval()
    with torch.no_grad():
        losses = [model.diffusion_loss(b, generator=torch.Generator().manual_seed(s), p_uncond=0.0)[0].mean().item()
                  for b in batches for s in seeds]
    return float(np.mean(losses))


def test_train_dm_runs_logs_grids_and_lowers_the_loss(repo_root, tmp_path):
    overrides = [f"run.root={tmp_path}", "trainer.max_steps=30", "trainer.val_check_interval=15"]
    load_script(repo_root).main(["--config", str(repo_root / TINY_CONFIG), *overrides])
    (run_dir,) = list((tmp_path / "dm_tiny_test").iterdir())
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()

    # grids: 2 cases x [CF | 6 real | 6 generated] of 32x32 panels, every 10 steps
    grids = sorted(p.name for p in (run_dir / "samples").glob("*.png"))
    assert grids == ["step_0000010.png", "step_0000020.png", "step_0000030.png"]
    grid = np.asarray(Image.open(run_dir / "samples" / grids[-1]))
    assert grid.shape == (2 * 32, 13 * 32, 3)

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/sample_ssim", "val/sample_psnr"} <= scalars
    assert any(tag.startswith("train/loss_t") for tag in scalars)
    assert "samples/grid" in events.Tags()["images"]
    ssim = [e.value for e in events.Scalars("val/sample_ssim")]
    assert len(ssim) == 3 and all(-1.0 <= v <= 1.0 for v in ssim)

    # the trained (EMA) model has a lower seeded loss on the training eyes than the same model untrained
    cfg = load_config([run_dir / "config.yaml"])
    datamodule = instantiate_from_config(cfg.data)
    datamodule.setup("fit")
    batches = [{k: b[k] for k in ("cf", "oct")} for b in datamodule.train_dataloader()]
    torch.manual_seed(0)
    untrained = instantiate_from_config(cfg.model)
    trained = ControlLDM.load_for_inference(run_dir / "checkpoints" / "last.ckpt", cfg)
    before = fixed_loss(untrained, batches)
    with trained.ema_weights():
        after = fixed_loss(trained, batches)
    assert before > 0.9  # eps regression starts near the noise variance
    assert after < 0.8 * before, (before, after)
