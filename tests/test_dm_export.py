"""Stage-2 export (cldm/export.py, eyeoct/dm_export.py): EMA or raw weights with the autoencoder, a
self-contained model.yaml, no overwriting, inference from the export without any pickle, and
`ControlLDM.load_from_checkpoint` on a Lightning checkpoint."""
import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from cldm.cldm import ControlLDM
from cldm.export import EXPORT_CONFIG, EXPORT_WEIGHTS, export_controlldm, load_exported_controlldm
from eyeoct.commands import train_dm
from eyeoct.inference.cli import main as infer
from eyeoct.volume_io import read_volume
from script_helpers import the_run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real 2-step tiny stage-2 run (Lightning checkpoint, export written by the config's callback)."""
    root = tmp_path_factory.mktemp("runs")
    train_dm.main(["--config", "dm/tiny_test", f"run.root={root}", "trainer.max_steps=2", "--log-level", "WARNING"])
    return the_run_dir(root, "dm_tiny_test")


@pytest.fixture(scope="module")
def trained(run_dir):
    return ControlLDM.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def weights_of(model, ema):
    context = model.ema_weights() if ema else torch.no_grad()
    with context:
        return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("ema.")}


def test_load_from_checkpoint_restores_the_trained_model(run_dir, trained):
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["hyper_parameters"]["cf_size"] == 32 and state["global_step"] == 2
    assert isinstance(trained, ControlLDM) and trained.ema is not None
    loaded = trained.state_dict()
    assert loaded.keys() == state["state_dict"].keys()
    assert all(torch.equal(loaded[k], v) if isinstance(v, torch.Tensor) else loaded[k] == v  # EMA count: a dict
               for k, v in state["state_dict"].items())
    default = ControlLDM.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # Lightning's default load
    assert torch.equal(default.state_dict()["null_context"], loaded["null_context"])


def test_end_of_training_export_holds_the_ema_weights_and_the_autoencoder(run_dir, trained):
    exported = load_file(str(run_dir / "export" / EXPORT_WEIGHTS))
    ema, raw = weights_of(trained, ema=True), weights_of(trained, ema=False)
    assert exported.keys() == ema.keys() and not any(k.startswith("ema.") for k in exported)
    assert any(k.startswith("first_stage.encoder.") for k in exported)
    assert all(torch.equal(exported[k], ema[k]) for k in ema)
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)  # two steps moved the EMA away from the raw weights
    spec = yaml.safe_load((run_dir / "export" / EXPORT_CONFIG).read_text())
    params = spec["params"]
    assert spec["weights"] == "ema" and spec["source"]["global_step"] == 2
    assert params["first_stage"] is None and params["scale_factor"] == 1.0 and params["use_ema"] is False
    assert params["first_stage_config"] == {"target": "ldm.models.autoencoder.AutoencoderKL",
                                            "params": {"ddconfig": {"ch": 16, "ch_mult": [1, 2], "num_res_blocks": 1,
                                                                    "z_channels": 4, "num_groups": 8},
                                                       "input_key": "oct"}}
    model, _ = load_exported_controlldm(run_dir / "export")
    assert all(torch.equal(model.state_dict()[k], ema[k]) for k in ema)


def test_export_only_writes_a_new_folder_and_no_ema_gives_the_raw_weights(run_dir, trained, capsys):
    train_dm.main(["--export-only", str(run_dir), "--no-ema", "--log-level", "WARNING"])
    assert capsys.readouterr().out.strip() == str(run_dir / "export-2")
    raw = weights_of(trained, ema=False)
    exported = load_file(str(run_dir / "export-2" / EXPORT_WEIGHTS))
    assert exported.keys() == raw.keys() and all(torch.equal(exported[k], raw[k]) for k in raw)
    assert yaml.safe_load((run_dir / "export-2" / EXPORT_CONFIG).read_text())["weights"] == "raw"
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        export_controlldm(trained, run_dir / "export")


def test_inference_from_the_export_loads_no_pickle_and_matches_the_run(run_dir, tmp_path, monkeypatch):
    photo = tmp_path / "photos" / "eye.png"
    photo.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(photo)
    common = ["--input", str(photo.parent), "--ddim-steps", "2", "--device", "cpu", "--format", "png",
              "--log-level", "WARNING"]
    infer(["--run", str(run_dir), "--out", str(tmp_path / "from_run"), *common])

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load called while inferring from an export folder")

    monkeypatch.setattr(torch, "load", no_pickle)
    result = infer(["--run", str(run_dir / "export"), "--out", str(tmp_path / "from_export"), *common])
    assert result.cases == ["eye"]
    from_run = read_volume(tmp_path / "from_run" / "eye")
    from_export = read_volume(tmp_path / "from_export" / "eye")
    assert from_export.shape == (6, 320, 448) and np.array_equal(from_run, from_export)
    with pytest.raises(ValueError, match="holds EMA weights"):
        infer(["--run", str(run_dir / "export"), "--out", str(tmp_path / "raw"), "--no-ema", *common])
