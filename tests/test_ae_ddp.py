"""Two-process CPU DDP (gloo) fit of the tiny stage-1 config through scripts/train_ae.py."""
from ae_helpers import TINY_CONFIG, TRAIN_AE, adam_steps, load_checkpoint, only_run_dir
from ddp_helpers import run_two_process_ddp

STEPS, DISC_START = 4, 2  # both phases: discriminator idle (still in the backward), then trained


def test_two_process_ddp_fit_finishes_on_both_ranks(tmp_path):
    result = run_two_process_ddp(TRAIN_AE, TINY_CONFIG, tmp_path, [
        f"trainer.max_steps={STEPS}", f"trainer.val_check_interval={STEPS}", "callbacks=[]",
        f"model.params.lossconfig.params.discriminator.start_step={DISC_START}"])
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
