"""Run folders: creation without overwrite, resume resolution, and the CLI's config handling."""

import pytest

from eyeoct.cli import training_arg_parser
from eyeoct.runs import RunDirError, claim_run_dir, create_run_dir, resolve_resume
from script_helpers import config_from_args


def test_run_dirs_are_new_every_time(tmp_path):
    first = create_run_dir(tmp_path, "demo")
    second = create_run_dir(tmp_path, "demo")
    assert first != second
    assert first.parent == tmp_path / "demo"
    for run in (first, second):
        assert (run / "checkpoints").is_dir() and (run / "samples").is_dir()


def test_claim_refuses_a_folder_with_files(tmp_path):
    target = tmp_path / "shared_run"
    assert claim_run_dir(target) == target and (target / "checkpoints").is_dir()
    (target / "config.yaml").write_text("x: 1\n")
    with pytest.raises(RunDirError, match="--resume"):
        claim_run_dir(target)


def test_resolve_resume_from_folder_and_checkpoint(tmp_path):
    run = create_run_dir(tmp_path, "r")
    with pytest.raises(RunDirError, match="last.ckpt"):
        resolve_resume(run)
    (run / "config.yaml").write_text("x: 1\n")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"0")
    (run / "checkpoints" / "best-10.ckpt").write_bytes(b"0")
    assert resolve_resume(run) == (run, run / "checkpoints" / "last.ckpt")
    assert resolve_resume(run / "checkpoints" / "best-10.ckpt") == (run, run / "checkpoints" / "best-10.ckpt")
    with pytest.raises(RunDirError, match="neither"):
        resolve_resume(tmp_path / "missing")


@pytest.fixture
def config_file(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"run: {{name: t, root: {tmp_path / 'runs'}}}\nmodel: {{lr: 1.0}}\n")
    return cfg_file


def new_run(config_file, *overrides):
    return config_from_args(training_arg_parser("test").parse_args(["--config", str(config_file), *overrides]))


def test_cli_writes_merged_config_into_a_new_run_folder(tmp_path, config_file):
    cfg, run_dir, ckpt = new_run(config_file, "model.lr=0.5")
    assert ckpt is None and run_dir.parent == tmp_path / "runs" / "t"
    saved = (run_dir / "config.yaml").read_text()
    assert "lr: 0.5" in saved


def test_a_second_invocation_gets_its_own_folder_and_leaves_the_first(config_file):
    _, run_dir, _ = new_run(config_file, "model.lr=0.5")
    _, run_dir2, _ = new_run(config_file)
    assert run_dir2 != run_dir and "lr: 0.5" in (run_dir / "config.yaml").read_text()


def test_resume_reads_the_run_folder_config_and_saves_overrides_beside_it(config_file):
    """Resuming reads the run folder's config alone; overrides are saved beside it, not over it."""
    _, run_dir, _ = new_run(config_file, "model.lr=0.5")
    parser = training_arg_parser("test")
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"0")
    cfg3, run_dir3, ckpt3 = config_from_args(parser.parse_args(["--resume", str(run_dir), "trainer.max_steps=7"]))
    assert run_dir3 == run_dir and ckpt3.name == "last.ckpt"
    assert cfg3.model.lr == 0.5 and cfg3.trainer.max_steps == 7
    assert len(list(run_dir.glob("config.resumed-*.yaml"))) == 1
