"""Baselines on the tiny phantom and a synthetic APTOS layout: values against hand computations, layout, refusals."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from data_synthetic import write_aptos_layout
from eyeoct.baselines import GROUND_TRUTH, BaselineError, BaselineSettings, baseline_data, run_baselines
from eyeoct.baselines.encoder import load_cf_encoder
from eyeoct.baselines.retrieval import nearest_by_cosine, nearest_by_l2, pixel_keys
from eyeoct.config import ConfigError, load_config, save_config
from eyeoct.data.datasets import PhantomDataset
from eyeoct.data.phantom import PhantomConfig, render_case
from eyeoct.eval import EvaluationSettings, evaluate_folder
from eyeoct.volume_io import list_volume_cases, read_volume
from script_helpers import REPO_ROOT, script_main

TINY_DATA = REPO_ROOT / "configs" / "data" / "phantom_tiny.yaml"
TINY_PHANTOM = dict(cf_size=32, oct_height=32, oct_width=32)  # as in phantom_tiny.yaml
TRAIN_INDICES = range(0, 8)
HELDOUT_INDICES = [*range(1000, 1004), *range(2000, 2004)]
TINY_ENCODER = {"cf_encoder": {"target": "cldm.cf_encoder.CFEncoder", "params": {
    "context_dim": 16, "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
    "trainable": False}}}


def case_id(index: int) -> str:
    return f"phantom-0-{index:06d}"


def tiny_encoder(tmp_path: Path):
    path = tmp_path / "tiny_encoder.yaml"
    path.write_text(yaml.safe_dump(TINY_ENCODER))
    return load_cf_encoder(path, seed=0), path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """All four baselines on configs/data/phantom_tiny.yaml (train 0..7, held-out 1000..1003 and 2000..2003)."""
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("baselines")
    encoder, _ = tiny_encoder(tmp)
    data = baseline_data(load_config([TINY_DATA]))
    out = tmp / "out"
    folders = run_baselines(data.train, data.heldout, out, BaselineSettings(batch_size=3), encoder, data.noise_free)
    return out, folders, data


def test_layout_counts_and_baseline_json(tiny_run):
    out, folders, data = tiny_run
    assert data.parts == ["val", "test"]
    assert sorted(p.name for p in out.iterdir()) == sorted(["mean", "nn_pixel", "nn_encoder", "oracle", GROUND_TRUTH])
    expected_ids = sorted(case_id(i) for i in HELDOUT_INDICES)
    for name, folder in folders.items():
        assert list_volume_cases(folder) == expected_ids
        for stem in expected_ids:
            assert sorted(p.name for p in (folder / stem).iterdir()) == [f"{stem}_{k}.png" for k in range(6)]
        if name != GROUND_TRUTH:
            record = json.loads((folder / "baseline.json").read_text())
            assert record["method"] == name and record["train_cases"] == 8 and record["heldout_cases"] == 8


def test_ground_truth_is_the_rendered_heldout_volume(tiny_run):
    out, _, _ = tiny_run
    config = PhantomConfig(**TINY_PHANTOM)
    for index in (1000, 2003):
        truth = render_case(0, index, config).oct
        np.testing.assert_array_equal(read_volume(out / GROUND_TRUTH / case_id(index)), truth)


def test_mean_equals_numpy_mean_of_training_volumes(tiny_run):
    out, _, _ = tiny_run
    config = PhantomConfig(**TINY_PHANTOM)
    volumes = np.stack([render_case(0, i, config).oct for i in TRAIN_INDICES]).astype(np.float64)
    expected = np.rint(volumes.mean(axis=0)).astype(np.uint8)
    for index in HELDOUT_INDICES:
        np.testing.assert_array_equal(read_volume(out / "mean" / case_id(index)), expected)


def test_nn_pixel_matches_a_hand_computed_l2_search(tiny_run):
    out, _, _ = tiny_run
    config = PhantomConfig(**TINY_PHANTOM)
    train_cf = np.stack([render_case(0, i, config).cf for i in TRAIN_INDICES]).astype(np.float64) / 127.5 - 1
    record = json.loads((out / "nn_pixel" / "baseline.json").read_text())
    for index in HELDOUT_INDICES:
        cf = render_case(0, index, config).cf.astype(np.float64) / 127.5 - 1  # 32x32: the key is the CF itself
        best = int(np.argmin(((train_cf - cf) ** 2).sum(axis=(1, 2, 3))))
        assert record["matches"][case_id(index)] == case_id(best)
        np.testing.assert_array_equal(read_volume(out / "nn_pixel" / case_id(index)), render_case(0, best, config).oct)


def test_oracle_is_the_noise_free_rendering_and_beats_the_mean(tiny_run, tmp_path):
    out, _, _ = tiny_run
    config = PhantomConfig(**TINY_PHANTOM)
    for index in HELDOUT_INDICES:
        clean = render_case(0, index, config, noise_free=True).oct
        np.testing.assert_array_equal(read_volume(out / "oracle" / case_id(index)), clean)
        assert not np.array_equal(clean, render_case(0, index, config).oct)
    settings = EvaluationSettings(metrics=("ssim", "psnr"))
    _, oracle, _ = evaluate_folder(out / "oracle", out / GROUND_TRUTH, tmp_path / "oracle_eval", settings)
    _, mean, _ = evaluate_folder(out / "mean", out / GROUND_TRUTH, tmp_path / "mean_eval", settings)
    assert oracle["n_cases"] == mean["n_cases"] == 8
    assert oracle["ssim"]["mean"] > mean["ssim"]["mean"] + 0.05
    assert oracle["psnr"]["mean"] > mean["psnr"]["mean"]


def test_heldout_cf_equal_to_a_training_cf_retrieves_that_volume_exactly(tmp_path):
    torch.manual_seed(0)
    encoder, _ = tiny_encoder(tmp_path)
    train = PhantomDataset(seed=0, start=0, num_cases=8, phantom=TINY_PHANTOM)
    copy_of_case_5 = PhantomDataset(seed=0, start=5, num_cases=1, phantom=TINY_PHANTOM)
    folders = run_baselines(train, [copy_of_case_5], tmp_path / "out",
                            BaselineSettings(which=("nn_pixel", "nn_encoder")), encoder)
    for method in ("nn_pixel", "nn_encoder"):
        np.testing.assert_array_equal(read_volume(folders[method] / case_id(5)), train.arrays(5)["oct"])


def test_nearest_neighbour_rules_on_hand_made_keys():
    keys = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0]])
    queries = torch.tensor([[2.9, 4.2], [0.9, 1.2], [-1.0, -1.0]])
    assert nearest_by_l2(queries, keys).tolist() == [1, 2, 0]  # the tie 2/3 goes to the lower index
    # cosine ignores length: [10, 10] points like [1, 1]; [0, 0] normalises to zero similarity
    assert nearest_by_cosine(torch.tensor([[10.0, 10.0], [3.0, 3.9]]), keys).tolist() == [2, 1]
    cf = torch.arange(2 * 3 * 64 * 64, dtype=torch.float32).reshape(2, 3, 64, 64)
    keys = pixel_keys(cf)
    assert keys.shape == (2, 3 * 32 * 32)
    assert keys[0, 0].item() == pytest.approx(cf[0, 0, :2, :2].double().mean().item())  # 2x2 area average


def test_script_refuses_a_non_empty_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(SystemExit, match="not empty"):
        script_main("baselines")(["--data-config", str(TINY_DATA), "--out", str(out), "--which", "mean"])
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(BaselineError, match="not empty"):
        run_baselines([], [], out, BaselineSettings(which=("mean",)))


def write_aptos_data_config(tmp_path: Path) -> Path:
    """Synthetic APTOS layout (4 patients x 2 eyes); val = one patient; predict = those CFs without OCT."""
    csv = write_aptos_layout(tmp_path / "aptos", patients=4, cf_size=40, oct_hw=(32, 48))
    data_config = tmp_path / "aptos.yaml"
    defaults = {"csv_path": str(csv), "cf_size": 32, "oct_size": [32, 48], "val_fraction": 0.25, "split_seed": 0}
    data_config.write_text(yaml.safe_dump({"data": {"target": "eyeoct.data.datamodule.EyeOCTDataModule", "params": {
        "dataset_defaults": defaults,
        "train": {"target": "eyeoct.data.datasets.AptosDataset", "params": {"split": "train"}},
        "val": {"target": "eyeoct.data.datasets.AptosDataset", "params": {"split": "val"}},
        "predict": {"target": "eyeoct.data.datasets.AptosDataset",
                    "params": {"split": "val", "require_oct": False}}}}}))
    return data_config


def test_script_on_an_aptos_layout_skips_the_oracle_and_resizes(tmp_path):
    data_config = write_aptos_data_config(tmp_path)
    _, encoder_config = tiny_encoder(tmp_path)
    out = tmp_path / "out"
    script_main("baselines")(["--data-config", str(data_config), "--out", str(out),
                        "--cf-encoder-config", str(encoder_config),
                        "--size", "40x24", "--format", "jpg"])
    assert sorted(p.name for p in out.iterdir()) == sorted(["mean", "nn_pixel", "nn_encoder", GROUND_TRUTH])
    heldout = list_volume_cases(out / GROUND_TRUTH)
    assert len(heldout) == 2  # one patient of four, both eyes
    for method in ("mean", "nn_pixel", "nn_encoder"):
        assert list_volume_cases(out / method) == heldout
        assert read_volume(out / method / heldout[0]).shape == (6, 24, 40)
        assert (out / method / heldout[0] / f"{heldout[0]}_5.jpg").is_file()
    matches = json.loads((out / "nn_pixel" / "baseline.json").read_text())["matches"]
    assert set(matches) == set(heldout) and not set(matches.values()) & set(heldout)


def test_trained_encoder_comes_from_a_controlldm_checkpoint_with_ema_weights(tmp_path):
    from cldm.cldm import ControlLDM
    from eyeoct.config import instantiate_from_config

    torch.manual_seed(0)
    config = REPO_ROOT / "configs" / "dm" / "tiny_test.yaml"
    model = instantiate_from_config(load_config([config]).model)
    with torch.no_grad():
        for p in model.cf_encoder.parameters():
            p.add_(0.1 * torch.randn_like(p))  # live weights now differ from the EMA shadows
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": model.state_dict()}, run_dir / "checkpoints" / "last.ckpt")
    save_config(load_config([config]), run_dir / "config.yaml")
    cf = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad(), model.ema_weights():
        expected = model.cf_encoder(cf)
    with torch.no_grad():
        for encoder in (load_cf_encoder(config, run_dir / "checkpoints" / "last.ckpt"), load_cf_encoder(None, run_dir)):
            torch.testing.assert_close(encoder(cf), expected)
        assert not torch.allclose(model.cf_encoder(cf), expected)
    with pytest.raises(ConfigError, match="run folder"):
        load_cf_encoder(None, tmp_path / "missing.ckpt")
    assert isinstance(model, ControlLDM)


def test_heldout_ids_repeated_across_sets_are_refused(tmp_path):
    train = PhantomDataset(seed=0, start=0, num_cases=2, phantom=TINY_PHANTOM)
    val = PhantomDataset(seed=0, start=1000, num_cases=2, phantom=TINY_PHANTOM)
    test = PhantomDataset(seed=0, start=1001, num_cases=2, phantom=TINY_PHANTOM)
    with pytest.raises(BaselineError, match="phantom-0-001001"):
        run_baselines(train, [val, test], tmp_path / "out", BaselineSettings(which=("mean",), batch_size=2))


def test_heldout_cases_without_oct_get_predictions_but_no_ground_truth(tmp_path):
    out = tmp_path / "out"
    script_main("baselines")(["--data-config", str(write_aptos_data_config(tmp_path)), "--out", str(out),
                        "--parts", "predict", "--which", "mean,nn_pixel"])
    assert sorted(p.name for p in out.iterdir()) == ["mean", "nn_pixel"]
    assert len(list_volume_cases(out / "mean")) == 2
    assert list_volume_cases(out / "nn_pixel") == list_volume_cases(out / "mean")
