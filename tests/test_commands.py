"""The console commands: packaged config names, entry points, thin scripts, and `--print-config` of every
command (the merged settings as YAML, exit 0, nothing written)."""
import ast
import importlib
from pathlib import Path

import pytest
import yaml

from eyeoct.commands import baselines, demo, evaluate, infer, make_phantom, prepare_data, train_ae, train_dm
from eyeoct.config import ConfigError, load_config, packaged_config_names, packaged_config_root, resolve_config_path


def setup_commands(repo_root: Path) -> dict:
    """setup.py's COMMANDS table (console command -> module of eyeoct.commands), read without running setup()."""
    tree = ast.parse((repo_root / "setup.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "COMMANDS")
    return ast.literal_eval(node.value)


def test_packaged_names_are_the_files_of_configs(repo_root):
    assert packaged_config_root() == repo_root / "configs"  # a checkout; an installed wheel has eyeoct/configs/
    files = sorted(p.relative_to(repo_root / "configs").with_suffix("").as_posix()
                   for p in (repo_root / "configs").rglob("*.yaml"))
    assert packaged_config_names() == files and "dm/phantom_demo" in files


def test_a_packaged_name_resolves_from_any_folder(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = repo_root / "configs" / "dm" / "tiny_test.yaml"
    for name in ("dm/tiny_test", "dm/tiny_test.yaml", "configs/dm/tiny_test.yaml"):
        assert resolve_config_path(name) == expected
    cfg = load_config(["dm/tiny_test"], ["trainer.max_steps=3"])
    assert cfg.data.params.train.target == "eyeoct.data.datasets.PhantomDataset"  # its includes: resolved
    assert cfg.trainer.max_steps == 3 and cfg.config_files == [str(expected)]


def test_an_existing_file_wins_over_the_packaged_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "configs" / "dm" / "tiny_test.yaml"
    local.parent.mkdir(parents=True)
    local.write_text("run: {name: mine}\n")
    assert load_config(["configs/dm/tiny_test.yaml"]).run.name == "mine"
    assert load_config(["dm/tiny_test"]).run.name == "dm_tiny_test"  # not a file here: the packaged one


def test_an_unknown_name_lists_the_packaged_names():
    with pytest.raises(ConfigError, match="dm/phantom_dem is neither a file nor a packaged config") as info:
        load_config(["dm/phantom_dem"])
    assert all(name in str(info.value) for name in packaged_config_names())


def test_every_console_command_has_a_main_and_a_thin_script(repo_root):
    commands = setup_commands(repo_root)
    assert sorted(commands) == sorted(f"eyeoct-{m.replace('_', '-')}" for m in commands.values())
    assert len(commands) == 8
    for module in commands.values():
        main = importlib.import_module(f"eyeoct.commands.{module}").main
        with pytest.raises(SystemExit) as info:
            main(["--help"])
        assert info.value.code == 0
        script = (repo_root / "scripts" / f"{module}.py").read_text()
        assert f"from eyeoct.commands.{module} import main" in script and len(script.splitlines()) <= 12


def printed(capsys, main, argv) -> dict:
    main([*argv, "--print-config"])
    return yaml.safe_load(capsys.readouterr().out)


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    yield folder
    assert list(folder.iterdir()) == [], "--print-config wrote something"


def test_print_config_of_the_training_commands(capsys, empty_cwd):
    cfg = printed(capsys, train_ae.main, ["--config", "ae/tiny_test", "trainer.max_steps=7"])
    assert cfg["trainer"]["max_steps"] == 7 and cfg["model"]["target"] == "ldm.models.autoencoder.AutoencoderKL"
    assert cfg["data"]["params"]["train"]["params"]["num_cases"] == 8  # from the included data config
    cfg = printed(capsys, train_dm.main, ["--config", "dm/phantom_demo", "data.params.batch_size=2"])
    assert cfg["model"]["params"]["first_stage"] == "???"  # still to be given
    assert cfg["model"]["params"]["image_size"] == [64, 96]  # interpolations resolved
    assert cfg["data"]["params"]["batch_size"] == 2
    cfg = printed(capsys, prepare_data.main, ["--config", "data/aptos", "data.params.dataset_defaults.cf_size=64"])
    assert cfg["data"]["params"]["dataset_defaults"]["cf_size"] == 64 and cfg["data"]["check_on_start"] is True


def test_demo_precision_auto_follows_the_cpu(capsys, empty_cwd, monkeypatch):
    import eyeoct.demo

    for native, expected in [(True, "bf16-mixed"), (False, 32)]:
        monkeypatch.setattr(eyeoct.demo, "cpu_has_native_bf16", lambda native=native: native)
        cfg = printed(capsys, demo.main, [])
        assert cfg["ae"]["trainer"]["precision"] == cfg["dm"]["trainer"]["precision"] == expected


def test_print_config_of_the_other_commands(capsys, empty_cwd, tmp_path):
    cfg = printed(capsys, baselines.main, ["--data-config", "data/phantom_tiny", "--out", "out", "--which", "mean"])
    assert cfg["baselines"]["cf_encoder_config"] == "baselines/cf_encoder_random" and cfg["baselines"]["out"] == "out"
    assert cfg["data"]["params"]["test"]["params"]["start"] == 2000
    cfg = printed(capsys, demo.main, ["--root", "r", "ae.trainer.max_steps=3"])
    assert cfg["ae"]["trainer"]["max_steps"] == 3 and cfg["demo"]["sampler"] == "dpmpp-2m"
    assert cfg["dm"]["model"]["params"]["first_stage"] == "r/demo/<timestamp>/ae/export"
    assert cfg["ae"]["run"]["seed"] == 0 and cfg["dm"]["run"]["seed"] == 0
    cfg = printed(capsys, demo.main, ["--seed", "1", "dm.run.seed=2"])  # --seed seeds both stages; overrides win
    assert (cfg["demo"]["seed"], cfg["ae"]["run"]["seed"], cfg["dm"]["run"]["seed"]) == (1, 1, 2)
    cfg = printed(capsys, demo.main, ["--precision", "bf16", "ae.trainer.precision=32"])
    assert (cfg["demo"]["precision"], cfg["ae"]["trainer"]["precision"], cfg["dm"]["trainer"]["precision"]) == (
        "bf16", 32, "bf16-mixed")
    cfg = printed(capsys, evaluate.main, ["--pred", "preds", "--gt", "truth"])
    assert cfg["out"] == "preds_eval" and cfg["settings"]["device"] == "auto"  # CUDA when present
    cfg = printed(capsys, make_phantom.main, ["--out", "phantom", "--n", "3", "--oct-size", "40x64"])
    assert cfg["n"] == 3 and cfg["phantom"]["oct_height"] == 40 and cfg["phantom"]["oct_width"] == 64
    ckpt = tmp_path / "model.ckpt"  # never read by --print-config
    ckpt.write_bytes(b"")
    cfg = printed(capsys, infer.main, ["--config", "dm/tiny_test", "--ckpt", str(ckpt), "--input", "photos",
                                  "--out", "preds", "--ddim-steps", "4", "--device", "cpu"])
    assert cfg["model_config"]["model"]["target"] == "cldm.cldm.ControlLDM"
    assert cfg["inference"]["steps"] == 4 and cfg["model_files"]["weights"] == str(ckpt)
