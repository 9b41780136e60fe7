"""Two-process CPU DDP (gloo) fit of the tiny stage-2 config through scripts/train_dm.py.

Every trainable part (UNet, ControlNet, CF tower and projections, pooled-vector MLPs, null tokens) must
receive a gradient on every rank, or DDP without find_unused_parameters fails; the sampling callback and
EMA must not stall the other rank.
"""
from ae_helpers import REPO_ROOT, adam_steps, load_checkpoint, only_run_dir
from ddp_helpers import run_two_process_ddp

from eyeoct.config import instantiate_from_config, load_config

TINY_CONFIG = REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"
TRAIN_DM = REPO_ROOT / "scripts" / "train_dm.py"
STEPS = 4


def test_two_process_ddp_fit_finishes_on_both_ranks_with_ema(tmp_path):
    result = run_two_process_ddp(TRAIN_DM, TINY_CONFIG, tmp_path, [
        f"trainer.max_steps={STEPS}", f"trainer.val_check_interval={STEPS}", "callbacks.0.params.every_n_steps=2"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    assert result.stderr.count(f"finished at step {STEPS}") == 2, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path, "dm_tiny_test")
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == STEPS
    assert int(ckpt["state_dict"]["ema.num_updates"]) == STEPS
    # every trainable parameter was stepped, and the pooled-vector path got real gradients
    names = list(instantiate_from_config(load_config([TINY_CONFIG]).model).trainable_named_parameters())
    optimizer = ckpt["optimizer_states"][0]
    assert len(optimizer["state"]) == len(names) and adam_steps(optimizer) == {STEPS}
    pooled_path = [i for i, name in enumerate(names) if "label_emb" in name or "pooled_proj" in name]
    assert len(pooled_path) == 2 * 4 + 2  # weight+bias of 2 linears in the UNet and ControlNet MLPs, CF projection
    assert all(optimizer["state"][i]["exp_avg_sq"].abs().sum() > 0 for i in pooled_path)
