"""Two-process CPU DDP (gloo) fit of the tiny stage-1 config through scripts/train_ae.py."""
import os
import subprocess
import sys

from ae_helpers import REPO_ROOT, TINY_CONFIG, TRAIN_AE, adam_steps, load_checkpoint, only_run_dir

STEPS, DISC_START = 4, 2  # both phases: discriminator idle (still in the backward), then trained


def test_two_process_ddp_fit_finishes_on_both_ranks(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_PORT"):
        env.pop(var, None)
    command = [sys.executable, str(TRAIN_AE), "--config", str(TINY_CONFIG), f"run.root={tmp_path}",
               "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", f"trainer.max_steps={STEPS}",
               f"trainer.val_check_interval={STEPS}", "callbacks=[]",
               f"model.params.lossconfig.params.discriminator.start_step={DISC_START}"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in result.stderr + result.stdout
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stderr + result.stdout
    assert result.stderr.count(f"finished at step {STEPS}") == 2, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path)
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == [f"best-{STEPS}.ckpt", "last.ckpt"]
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == STEPS
    assert adam_steps(ckpt["optimizer_states"][0]) == {STEPS}
    assert adam_steps(ckpt["optimizer_states"][1]) == {STEPS - DISC_START}
