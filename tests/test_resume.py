"""Exact resume: a run stopped or killed after a checkpoint, then resumed with --resume RUN_DIR, ends with
the weights and EMA of the uninterrupted run (CPU, fp32, one process), also mid-epoch and with loader workers."""
import signal
import subprocess
import time

import pytest
import torch
from script_helpers import (REPO_ROOT, final_weights, max_weight_difference, script_command, script_env,
                            script_main, the_run_dir)

STAGES = {
    # 12 training eyes in batches of 4: three batches a pass, so most checkpoints (every 5 steps, and at
    # validation for stage 1, whose manual optimisation saves only once its monitored metric exists) fall mid-pass
    "ae": ("train_ae", REPO_ROOT / "configs/ae/tiny_test.yaml", "ae_tiny_test",
           ["callbacks=[]", "trainer.max_steps=24", "trainer.val_check_interval=8"]),
    "dm": ("train_dm", REPO_ROOT / "configs/dm/tiny_test.yaml", "dm_tiny_test",
           ["trainer.max_steps=20", "callbacks.0.params.every_n_steps=8"]),
}
COMMON = ["data.params.train.params.num_cases=12", "checkpoint.every_n_train_steps=5", "data.params.num_workers=2"]


def train(stage, root, *overrides):
    script, config, name, stage_overrides = STAGES[stage]
    script_main(script)(["--config", str(config), f"run.root={root}", *stage_overrides, *COMMON, *overrides,
                         "--log-level", "WARNING"])
    return the_run_dir(root, name)


def resume(stage, run_dir, *overrides):
    script_main(STAGES[stage][0])(["--resume", str(run_dir), *overrides, "--log-level", "WARNING"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Final weights of an uninterrupted run of each stage."""
    cache = {}

    def get(stage):
        if stage not in cache:
            cache[stage] = final_weights(train(stage, tmp_path_factory.mktemp(f"uninterrupted_{stage}")))
        return cache[stage]

    return get


@pytest.mark.parametrize("stage", ["ae", "dm"])
def test_a_run_stopped_mid_pass_resumes_to_the_uninterrupted_weights(stage, tmp_path, uninterrupted):
    run_dir = train(stage, tmp_path, "trainer.max_steps=7")  # step 7 = pass 2, one of three batches done
    position = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["EyeOCTDataModule"]["position"]
    assert position == {"epoch": 2, "offset": 4}
    resume(stage, run_dir, f"trainer.max_steps={24 if stage == 'ae' else 20}")
    assert max_weight_difference(final_weights(run_dir), uninterrupted(stage)) <= 1e-6


@pytest.mark.parametrize("stage", ["ae", "dm"])
def test_a_run_killed_after_a_checkpoint_resumes_to_the_uninterrupted_weights(stage, tmp_path, uninterrupted):
    script, config, name, stage_overrides = STAGES[stage]
    command = script_command(script, "--config", str(config), f"run.root={tmp_path}", *stage_overrides, *COMMON,
                             "--log-level", "WARNING")
    process = subprocess.Popen(command, env=script_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob(f"{name}/*/checkpoints/last.ckpt")):
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    run_dir = the_run_dir(tmp_path, name)
    killed_at = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"]
    assert 0 < killed_at < 20
    resume(stage, run_dir)
    assert max_weight_difference(final_weights(run_dir), uninterrupted(stage)) <= 1e-6
