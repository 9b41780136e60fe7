"""Inference with a real tiny ControlLDM (configs/dm/tiny_test.yaml) through `scripts/infer.py`'s entry point."""
import csv
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import retina

from eyeoct.ae_export import measure_and_export
from eyeoct.config import instantiate_from_config, load_config, save_config
from eyeoct.inference.cli import cli_entry, main
from eyeoct.inference.loading import load_inference_model
from eyeoct.inference.runner import cf_preparer
from eyeoct.data.images import read_rgb
from eyeoct.volume_io import read_volume



@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder (config.yaml + checkpoints/last.ckpt) of an initialised tiny model whose CF matters.

    The zero-initialised output/zero convolutions are filled with small random values so the CF
    changes the output; the EMA shadows keep the construction-time values, so EMA and raw weights differ.
    """
    from script_helpers import REPO_ROOT

    torch.manual_seed(0)
    cfg = load_config([REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"])
    model = instantiate_from_config(cfg.model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("first_stage.") and p.requires_grad and not p.any():
                p.normal_(0, 0.05)
    folder = tmp_path_factory.mktemp("run")
    save_config(cfg, folder / "config.yaml")
    (folder / "checkpoints").mkdir()
    torch.save({"state_dict": model.state_dict()}, folder / "checkpoints" / "last.ckpt")
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name, shape in [("a", (40, 56, 3)), ("b", (64, 48, 3)), ("c", (36, 36))]:
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{name}.png")
    return folder


def infer(run_dir, photos, out, *extra):
    return main(["--run", str(run_dir), "--input", str(photos), "--out", str(out), "--ddim-steps", "2",
                 "--device", "cpu", "--format", "png", "--log-level", "WARNING", *extra])


def test_real_fundus_photo_gives_six_nonconstant_slices(run_dir, tmp_path):
    path = tmp_path / "retina.jpg"
    Image.fromarray(retina()).save(path, quality=90)
    loaded = load_inference_model(run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt", "cpu")
    cf = cf_preparer(loaded.cf_size)(read_rgb(path))[None]
    volume = loaded.model.sample(cf, steps=2, eta=0.0, guidance_scale=1.0, generator=[torch.Generator()])
    assert volume.shape == (1, 6, 32, 32) and torch.isfinite(volume).all()

    out = tmp_path / "out"
    result = main(["--run", str(run_dir), "--input", str(path), "--out", str(out), "--ddim-steps", "2",
                   "--device", "cpu", "--zip", "--log-level", "WARNING"])
    assert result.cases == ["retina"] and result.skipped == []
    slices = read_volume(out / "retina")
    assert slices.shape == (6, 320, 448)
    assert all(s.std() > 1 for s in slices)
    with zipfile.ZipFile(out / "submission.zip") as archive:
        assert sorted(archive.namelist()) == [f"retina/retina_{k}.jpg" for k in range(6)]
    with open(out / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["checkpoint"] for r in rows} == {str(run_dir / "checkpoints" / "last.ckpt")}
    assert {r["steps"] for r in rows} == {"2"} and (out / "montages" / "retina.png").is_file()
    assert {r["sampler"] for r in rows} == {"dpmpp-2m"}  # the default
    assert {r["input_check"] for r in rows if r["case"] == "retina"} == {"ok"}

    ddim = main(["--run", str(run_dir), "--input", str(path), "--out", str(tmp_path / "ddim"), "--sampler", "ddim",
                 "--steps", "2", "--device", "cpu", "--format", "png", "--log-level", "WARNING", "--quiet"])
    with open(ddim.index_path, newline="") as handle:
        assert {(r["sampler"], r["steps"]) for r in csv.DictReader(handle)} == {("ddim", "2")}
    assert not np.array_equal(read_volume(tmp_path / "ddim" / "retina"), slices)  # the choice reaches the model


def test_real_model_same_seed_same_files_and_batch_size_changes_only_rounding(run_dir, photos, tmp_path):
    """Noise is per item, so batching changes only float summation order inside batched kernels
    (~1e-6), which can flip the rounding of a few pixels by one grey level; same settings give the same bytes."""
    for name, batch in [("b1", "1"), ("again", "1"), ("b3", "3")]:
        infer(run_dir, photos, tmp_path / name, "--batch-size", batch, "--guidance", "2", "--seed", "3")
    volumes = {}
    for case in "abc":
        for k in range(6):
            name = f"{case}/{case}_{k}.png"
            assert (tmp_path / "b1" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
        volumes[case] = read_volume(tmp_path / "b1" / case).astype(int)
        difference = np.abs(volumes[case] - read_volume(tmp_path / "b3" / case))
        assert difference.max() <= 1 and np.count_nonzero(difference) < 1e-3 * difference.size
    assert np.abs(volumes["a"] - volumes["b"]).mean() > 1  # the CF (and its seed) matter


def test_ema_weights_are_used_unless_no_ema(run_dir, photos, tmp_path):
    loaded = load_inference_model(run_dir / "config.yaml", run_dir / "checkpoints" / "last.ckpt", "cpu")
    assert loaded.uses_ema and loaded.cf_size == 32
    infer(run_dir, photos, tmp_path / "ema")
    infer(run_dir, photos, tmp_path / "raw", "--no-ema")
    difference = np.abs(read_volume(tmp_path / "ema" / "a").astype(float) - read_volume(tmp_path / "raw" / "a"))
    assert difference.mean() > 1


def test_cli_reports_bad_model_paths_and_refuses_a_full_output(run_dir, photos, tmp_path):
    with pytest.raises(SystemExit, match=r"checkpoint not found: expected .*nothing\.ckpt"):
        cli_entry(["--run", str(run_dir), "--ckpt", str(tmp_path / "nothing.ckpt"), "--input", str(photos),
                   "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="eta=0.5: the dpmpp-2m sampler is deterministic.*needs the ddim sampler"):
        cli_entry(["--run", str(run_dir), "--input", str(photos), "--out", str(tmp_path / "o"), "--eta", "0.5"])
    with pytest.raises(SystemExit, match="--run RUN_DIR, or with both --config CFG and --ckpt CKPT"):
        cli_entry(["--config", str(run_dir / "config.yaml"), "--input", str(photos), "--out", str(tmp_path / "o")])
    full = tmp_path / "full"
    full.mkdir()
    (full / "x.txt").write_text("x")
    with pytest.raises(SystemExit, match="not empty; pass --overwrite"):
        cli_entry(["--run", str(run_dir), "--input", str(photos), "--out", str(full), "--device", "cpu"])


def test_a_moved_stage1_export_is_named_and_found_again_with_first_stage(tmp_path, photos):
    """A run copied to another machine: its config points at a stage-1 export that is not there."""
    from script_helpers import REPO_ROOT

    cfg = load_config([REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"])
    torch.manual_seed(0)
    autoencoder = instantiate_from_config(cfg.model.params.first_stage_config)
    measure_and_export(autoencoder, [{"oct": torch.zeros(1, 6, 32, 32)}], tmp_path / "ae" / "export", n_batches=1)
    cfg.model.params.first_stage = str(tmp_path / "ae" / "export")
    cfg.model.params.first_stage_config = None
    cfg.model.params.scale_factor = None
    model = instantiate_from_config(cfg.model)
    run = tmp_path / "run"
    save_config(cfg, run / "config.yaml")
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": model.state_dict()}, run / "checkpoints" / "last.ckpt")
    (tmp_path / "ae").rename(tmp_path / "copied_ae")

    with pytest.raises(SystemExit, match=r"stage-1 export folder not found: .*ae/export.*--first-stage"):
        cli_entry(["--run", str(run), "--input", str(photos), "--out", str(tmp_path / "o")])
    result = infer(run, photos, tmp_path / "out", "--first-stage", str(tmp_path / "copied_ae" / "export"))
    assert result.cases == ["a", "b", "c"]
    found_again = read_volume(tmp_path / "out" / "a")
    assert found_again.shape == (6, 320, 448)

    # checkpoints written by training keep the autoencoder's config: no export folder needed at all
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["first_stage_spec"]["params"]["ddconfig"] == dict(autoencoder.ddconfig)
    torch.save(checkpoint, run / "checkpoints" / "last.ckpt")
    infer(run, photos, tmp_path / "self_contained")
    np.testing.assert_array_equal(read_volume(tmp_path / "self_contained" / "a"), found_again)
