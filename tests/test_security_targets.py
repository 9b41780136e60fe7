"""A config, run folder, export or checkpoint from someone else builds only registered classes: every route that
once ran code (torch.hub.load of a local hubconf.py, torch.load with weights_only false) is refused with the target
and the file named, and nothing of the hostile file runs."""
import subprocess

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from PIL import Image

from cldm.cldm import FIRST_STAGE_SPEC_KEY, ControlLDM
from cldm.export import EXPORT_CONFIG, export_controlldm, load_exported_controlldm
from eyeoct.config import ConfigError, instantiate_from_config, load_config, save_config
from ldm.models.autoencoder_export import load_exported_autoencoder
from script_helpers import REPO_ROOT, script_command, script_env


@pytest.fixture
def hub(tmp_path):
    """A folder with a hubconf.py that leaves a marker file when imported or called; returns (folder, marker)."""
    folder, marker = tmp_path / "hub", tmp_path / "ran.txt"
    folder.mkdir()
    (folder / "hubconf.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n"
                                       f"def evil(**kwargs):\n    open({str(marker)!r}, 'w').write('called')\n")
    return folder, marker


def hub_block(folder):
    return {"target": "torch.hub.load", "params": {"repo_or_dir": str(folder), "model": "evil", "source": "local"}}


@pytest.mark.parametrize("target", ["torch.hub.load", "torch.load", "os.system", "builtins.eval",
                                    "pytorch_lightning.Trainer", "torch.nn.Module.load_state_dict"])
def test_outside_names_are_refused_before_import(target):
    with pytest.raises(ConfigError, match=rf"config target '{target}' in .* is refused"):
        instantiate_from_config({"target": target, "params": {}})


def test_project_functions_and_re_exported_foreign_classes_are_refused():
    # a function of the project's own package
    with pytest.raises(ConfigError, match=r"'eyeoct.config.load_config' .* refused: it is a function, not a class"):
        instantiate_from_config({"target": "eyeoct.config.load_config", "params": {}})
    # a foreign class reachable under a project name (ldm.util.config imports OmegaConf)
    with pytest.raises(ConfigError, match=r"'ldm.util.config.OmegaConf' .* a class from outside the project"):
        instantiate_from_config({"target": "ldm.util.config.OmegaConf"})
    with pytest.raises(ConfigError, match="a dotted class name"):
        instantiate_from_config({"target": "eyeoct..x"})


def test_a_config_file_with_a_nested_hostile_target_is_refused_at_load_naming_all(tmp_path, hub):
    folder, marker = hub
    cfg = tmp_path / "downloaded.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"target": "cldm.cldm.ControlLDM", "params": {
        "first_stage_config": hub_block(folder)}}, "callbacks": [{"target": "torch.load", "params": {"f": "x"}}]}))
    with pytest.raises(ConfigError) as err:
        load_config([cfg])
    message = str(err.value)
    assert str(cfg) in message
    assert "model.params.first_stage_config.target: 'torch.hub.load'" in message
    assert "callbacks[0].target: 'torch.load'" in message
    assert not marker.exists()


def hostile_run_folder(tmp_path, hub_folder):
    """A run folder as a colleague might share it: the tiny stage-2 config with the model replaced by torch.hub.load,
    and a checkpoint."""
    run = tmp_path / "shared_run"
    cfg = load_config([REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"])
    cfg.model = hub_block(hub_folder)
    cfg.pop("config_files")
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    torch.save({"state_dict": {}}, run / "checkpoints" / "last.ckpt")
    return run


@pytest.mark.parametrize("command", [
    lambda run, out: script_command("infer", "--run", str(run), "--input", str(out / "photos"), "--out",
                                    str(out / "predictions")),
    lambda run, out: script_command("train_dm", "--resume", str(run)),
    lambda run, out: script_command("train_dm", "--config", str(run / "config.yaml"), f"run.root={out}"),
], ids=["infer --run", "train_dm --resume", "train_dm --config"])
def test_commands_on_a_shared_hostile_run_folder_refuse_and_run_nothing(tmp_path, hub, command):
    folder, marker = hub
    run = hostile_run_folder(tmp_path, folder)
    out = tmp_path / "work"
    (out / "photos").mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(out / "photos" / "a.png")
    result = subprocess.run(command(run, out), capture_output=True, text=True, env=script_env(), timeout=300)
    assert result.returncode != 0
    assert "'torch.hub.load'" in result.stderr and "config.yaml" in result.stderr, result.stderr
    assert not marker.exists()


@pytest.fixture(scope="module")
def tiny_model():
    return instantiate_from_config(load_config([REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"]).model)


def test_a_stage2_export_accepts_only_the_targets_it_was_written_with(tmp_path, hub, tiny_model):
    folder, marker = hub
    export = export_controlldm(tiny_model, tmp_path / "export")
    assert isinstance(load_exported_controlldm(export)[0], ControlLDM)  # the export as written loads
    spec = yaml.safe_load((export / EXPORT_CONFIG).read_text())
    spec["params"]["first_stage_config"] = hub_block(folder)
    (export / EXPORT_CONFIG).write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"model.yaml: refused target\(s\) params.first_stage_config.target: "
                                          r"'torch.hub.load'"):
        load_exported_controlldm(export)
    # even a project class the export was not written with
    spec["params"]["first_stage_config"] = {"target": "eyeoct.data.datasets.PhantomDataset", "params": {}}
    (export / EXPORT_CONFIG).write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="PhantomDataset"):
        load_exported_controlldm(export)
    assert not marker.exists()


def test_a_stage1_export_naming_another_target_is_refused(tmp_path, hub, tiny_model):
    folder, marker = hub
    export = tmp_path / "ae_export"
    export.mkdir()
    (export / "autoencoder.yaml").write_text(yaml.safe_dump({**hub_block(folder), "scale_factor": 1.0}))
    with pytest.raises(ConfigError, match=r"autoencoder.yaml: refused target\(s\) target: 'torch.hub.load'"):
        load_exported_autoencoder(export)
    assert not marker.exists()


def test_a_checkpoint_whose_autoencoder_copy_names_another_target_is_refused(tmp_path, hub, tiny_model):
    folder, marker = hub
    cfg = load_config([REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"])
    cfg.model.params.first_stage = str(tmp_path / "moved_export")  # gone: the checkpoint's copy would be used
    cfg.model.params.first_stage_config = None
    cfg.model.params.scale_factor = None
    save_config(cfg, tmp_path / "config.yaml")
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": tiny_model.state_dict(), FIRST_STAGE_SPEC_KEY: {**hub_block(folder), "scale_factor": 1.0}},
               ckpt)
    with pytest.raises(ConfigError, match=rf"{ckpt.name} \(first_stage_spec\): refused target\(s\) "
                                          r"target: 'torch.hub.load'"):
        ControlLDM.load_for_inference(ckpt, load_config([tmp_path / "config.yaml"]))
    assert not marker.exists()
