"""Scale factor measurement and the export/load round trip of the stage-1 autoencoder."""
import pytest
import torch
import yaml

from eyeoct.ae_export import measure_and_export
from eyeoct.runs import new_export_dir
from ldm.models.autoencoder import AutoencoderKL
from ldm.models.autoencoder_export import load_exported_autoencoder


def small_model() -> AutoencoderKL:
    torch.manual_seed(0)
    ddconfig = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, in_channels=6, out_ch=6, z_channels=4, num_groups=4)
    return AutoencoderKL(ddconfig=ddconfig, input_key="oct")


def test_scale_factor_is_one_over_std_of_posterior_samples(tmp_path):
    model = small_model()
    gen = torch.Generator().manual_seed(1)
    batches = [{"oct": torch.rand(3, 6, 16, 16, generator=gen) * 2 - 1} for _ in range(3)]
    out_dir, scale_factor = measure_and_export(model, batches, tmp_path / "export", n_batches=2, seed=7)
    sampler = torch.Generator().manual_seed(7)
    with torch.no_grad():
        z = torch.cat([model.encode(b["oct"]).sample(sampler) for b in batches[:2]])
    assert scale_factor == pytest.approx(1.0 / z.double().std().item(), rel=1e-9)
    spec = yaml.safe_load((out_dir / "autoencoder.yaml").read_text())
    assert spec == {"target": "ldm.models.autoencoder.AutoencoderKL",
                    "params": {"ddconfig": model.ddconfig, "input_key": "oct"},
                    "scale_factor": scale_factor, "n_batches_measured": 2}


def test_export_load_round_trip_decodes_identically(tmp_path):
    model = small_model().eval()
    measure_and_export(model, [{"oct": torch.zeros(1, 6, 16, 16)}], tmp_path / "export", n_batches=1)
    loaded, scale_factor = load_exported_autoencoder(tmp_path / "export" / "autoencoder.yaml")
    assert not loaded.training and loaded.loss is None and scale_factor > 0
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    x = torch.rand(2, 6, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.decode(z))
        assert torch.equal(loaded.encode(x).mean, model.encode(x).mean)


def test_an_export_written_before_a_key_rename_still_loads_and_says_so(tmp_path, caplog):
    model = small_model().eval()
    measure_and_export(model, [{"oct": torch.zeros(1, 6, 16, 16)}], tmp_path / "export", n_batches=1)
    spec_path = tmp_path / "export" / "autoencoder.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["params"]["ddconfig"]["norm_groups"] = spec["params"]["ddconfig"].pop("num_groups")  # the former name
    spec_path.write_text(yaml.safe_dump(spec))
    with caplog.at_level("WARNING"):
        loaded, _ = load_exported_autoencoder(tmp_path / "export")
    assert loaded.ddconfig["num_groups"] == 4
    assert f"{spec_path} was written by an earlier version: renamed norm_groups -> num_groups" in caplog.text
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded.decode(z), model.decode(z))


def test_an_export_never_replaces_an_existing_one(tmp_path):
    model = small_model().eval()
    first, _ = measure_and_export(model, [{"oct": torch.zeros(1, 6, 16, 16)}], tmp_path / "export", n_batches=1)
    before = {path.name: path.read_bytes() for path in first.iterdir()}
    with pytest.raises(FileExistsError, match="refusing to overwrite the existing export folder .*export"):
        measure_and_export(small_model(), [{"oct": torch.ones(1, 6, 16, 16)}], first, n_batches=1)
    assert {path.name: path.read_bytes() for path in first.iterdir()} == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"]  # no temporary folder left behind
    assert new_export_dir(tmp_path) == tmp_path / "export-2"


def test_loading_a_missing_export_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="autoencoder.yaml"):
        load_exported_autoencoder(tmp_path)
    (tmp_path / "autoencoder.yaml").write_text(yaml.safe_dump(
        {"target": "ldm.models.autoencoder.AutoencoderKL", "params": {"ddconfig": {}}, "scale_factor": 1.0}))
    with pytest.raises(FileNotFoundError, match="autoencoder.safetensors"):
        load_exported_autoencoder(tmp_path)
