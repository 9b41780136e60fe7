"""Two-process CPU DDP (gloo) fit of the tiny stage-2 config, then its resumption in one process.

Every trainable part (UNet, ControlNet, CF tower and projections, pooled-vector MLPs, null tokens) must
receive a gradient on every rank, or DDP without find_unused_parameters fails; the ranks must draw
different timesteps and noise yet end with identical weights and EMA; the sampling callback and EMA must
not stall the other rank; the run must resume in one process with the same data order.
"""
import subprocess

import torch
from ae_helpers import adam_steps, load_checkpoint
from ddp_helpers import run_two_process_ddp
from script_helpers import REPO_ROOT, max_weight_difference, script_command, script_env, the_run_dir

from eyeoct.config import instantiate_from_config, load_config

TINY_CONFIG = REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"
SPY_SCRIPT = REPO_ROOT / "tests" / "ddp_draws_script.py"
# the ControlNet's pooled-vector MLP gets its first gradient at step 4 (behind the zero-initialised output,
# zero convs and ResBlock output convs); 24 eyes, 2 ranks x batch 4: three steps a pass, so step 4 is mid-pass
STEPS = 4


def test_two_process_ddp_ranks_draw_differently_end_equal_and_resume_in_one_process(tmp_path, monkeypatch):
    monkeypatch.setenv("EYEOCT_TEST_DRAWS", str(tmp_path))
    result = run_two_process_ddp(SPY_SCRIPT, TINY_CONFIG, tmp_path, [
        f"trainer.max_steps={STEPS}", f"trainer.val_check_interval={STEPS}", "callbacks.0.params.every_n_steps=2",
        "data.params.train.params.num_cases=24"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    assert result.stderr.count(f"finished at step {STEPS}") == 2, result.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    draws = [r["first_draw"] for r in ranks]
    assert not torch.equal(draws[0]["timesteps"], draws[1]["timesteps"])
    assert not torch.allclose(draws[0]["noise"], draws[1]["noise"])
    assert max_weight_difference(ranks[0]["weights"], ranks[1]["weights"]) == 0.0  # EMA shadows included
    assert any(name.startswith("ema.shadow_") for name in ranks[0]["weights"])

    run_dir = the_run_dir(tmp_path, "dm_tiny_test")
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == STEPS
    assert ckpt["state_dict"]["ema._extra_state"] == {"num_updates": STEPS}
    assert ckpt["EyeOCTDataModule"] == {"position": {"epoch": 1, "offset": 8}, "seed": 0, "world_size": 2,
                                        "batch_size": 4}
    # every trainable parameter was stepped, and the pooled-vector path got real gradients
    names = list(instantiate_from_config(load_config([TINY_CONFIG]).model).trainable_named_parameters())
    optimizer = ckpt["optimizer_states"][0]
    assert len(optimizer["state"]) == len(names) and adam_steps(optimizer) == {STEPS}
    pooled_path = [i for i, name in enumerate(names) if "label_emb" in name or "pooled_proj" in name]
    assert len(pooled_path) == 2 * 4 + 2  # weight+bias of 2 linears in the UNet and ControlNet MLPs, CF projection
    assert all(optimizer["state"][i]["exp_avg_sq"].abs().sum() > 0 for i in pooled_path)

    resumed = subprocess.run(
        script_command("train_dm", "--resume", str(run_dir), "trainer.devices=1", "trainer.strategy=auto",
                       f"trainer.max_steps={STEPS + 2}"),
        cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "data order: resuming pass 1 at sample 8" in resumed.stderr
    assert "saved by 2 rank(s) x batch 4, resumed with 1 rank(s) x batch 4" in resumed.stderr
    assert f"finished at step {STEPS + 2}" in resumed.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["EyeOCTDataModule"]["position"] == {
        "epoch": 1, "offset": 16}
