"""scripts/evaluate.py and eyeoct.eval on small folders with hand-checkable numbers."""
import hashlib
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch

from eyeoct.eval import CaseMismatchError, EvaluationSettings, evaluate_folder, resize_volume
from eyeoct.volume_io import write_volume
from script_helpers import script_command, script_env


def _volumes(seed, n, shape=(6, 24, 32)):
    rng = np.random.default_rng(seed)
    return {f"case{i}": rng.integers(20, 200, shape, dtype=np.uint8) for i in range(n)}


def _write_all(root, volumes):
    for stem, vol in volumes.items():
        write_volume(root, stem, vol)
    return root


def test_identical_and_offset_cases_give_known_table(tmp_path, repo_root):
    gt = _volumes(0, 3)
    pred = dict(gt)
    pred["case1"] = gt["case1"] + 10  # constant offset: MSE 100 -> PSNR 10*log10(255^2/100)
    gt_dir, pred_dir = _write_all(tmp_path / "gt", gt), _write_all(tmp_path / "pred", pred)
    result = subprocess.run(script_command("evaluate", "--pred", str(pred_dir),
                             "--gt", str(gt_dir), "--metrics", "ssim,psnr,radial"),
                            capture_output=True, text=True, env=script_env(), check=True)
    out_dir = tmp_path / "pred_eval"
    assert json.loads(result.stdout)["out"] == str(out_dir)
    table = pd.read_csv(out_dir / "per_case.csv").set_index("case")
    assert table.loc["case0", "ssim"] == pytest.approx(1.0) and table.loc["case2", "ssim"] == pytest.approx(1.0)
    assert np.isinf(table.loc["case0", "psnr"]) and np.isinf(table.loc["case2", "psnr"])
    assert table.loc["case1", "psnr"] == pytest.approx(10 * np.log10(255**2 / 100), abs=1e-9)
    assert table.loc["case1", "ssim"] < 1.0
    assert (table["radial_gt"] == table.loc[:, "radial_gt"]).all()
    assert table.loc["case0", "radial_pred"] == pytest.approx(table.loc["case0", "radial_gt"])
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["n_cases"] == 3 and summary["data_range"] == 255 and summary["reference"] == "pred"
    psnr = summary["methods"]["pred"]["psnr"]
    assert psnr["n_inf"] == 2 and psnr["mean"] == "inf"
    assert psnr["mean_finite"] == pytest.approx(10 * np.log10(255**2 / 100))
    metrics = pd.read_csv(out_dir / "metrics.csv").set_index("metric")
    assert metrics.loc["psnr", "n"] == 1 and metrics.loc["psnr", "n_nonfinite"] == 2  # inf left out, counted
    assert metrics.loc["psnr", "mean"] == pytest.approx(10 * np.log10(255**2 / 100))
    report = (out_dir / "report.html").read_text()
    # plots (metrics, SSIM per slice; no scatter with one method) and three example rows: best, median, worst
    assert report.count("data:image/png;base64,") == 2 + 3 and "worst: case1" in report
    # a second run never overwrites: default goes to a new folder, an explicit existing folder is an error
    _, _, second = evaluate_folder(pred_dir, gt_dir, settings=EvaluationSettings(metrics=("psnr",)))
    assert second == tmp_path / "pred_eval_1"
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        evaluate_folder(pred_dir, gt_dir, out_dir, EvaluationSettings(metrics=("psnr",)))


def test_aptos_csv_ground_truth_matches_folder_ground_truth(tmp_path):
    from PIL import Image

    gt = _volumes(5, 2, (6, 40, 56))
    rows = ["PID,CF_path,OCT_path"]
    for index, (stem, vol) in enumerate(gt.items()):
        cf_stem = f"0000{index}-1{'LR'[index]}"
        (tmp_path / "aptos" / "CF").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "aptos" / "CF" / f"{cf_stem}.png")
        write_volume(tmp_path / "aptos" / "OCT", stem, vol)  # OCT folder named differently from the CF stem
        write_volume(tmp_path / "by_cf_stem", cf_stem, vol)
        rows.append(f"P{index},{cf_stem}.png,{stem}")
    (tmp_path / "aptos" / "train.csv").write_text("\n".join(rows) + "\n")
    pred_dir = tmp_path / "by_cf_stem"
    settings = EvaluationSettings(metrics=("ssim", "psnr"))
    from_csv, _, _ = evaluate_folder(pred_dir, tmp_path / "aptos" / "train.csv", tmp_path / "o1", settings)
    from_dir, _, _ = evaluate_folder(pred_dir, pred_dir, tmp_path / "o2", settings)
    pd.testing.assert_frame_equal(from_csv, from_dir)
    assert from_csv["case"].tolist() == ["00000-1L", "00001-1R"] and (from_csv["ssim"] == 1.0).all()
    # the CSV names each case's CF photo: the example rows start with it, a folder ground truth has none
    assert "Columns: CF | ground truth | by_cf_stem" in (tmp_path / "o1" / "report.html").read_text()
    assert "the rows start at the ground truth" in (tmp_path / "o2" / "report.html").read_text()


def test_case_mismatch_lists_missing_and_extra(tmp_path):
    gt_dir = _write_all(tmp_path / "gt", _volumes(0, 3))
    pred = _volumes(0, 2)
    pred["stranger"] = pred["case0"]
    pred_dir = _write_all(tmp_path / "pred", pred)
    with pytest.raises(CaseMismatchError, match="without prediction.*case2.*not in the ground truth.*stranger"):
        evaluate_folder(pred_dir, gt_dir, tmp_path / "out")
    with pytest.raises(ValueError, match="unknown metric"):
        EvaluationSettings(metrics=("ssim", "fancy"))


def test_predictions_resized_to_gt_size(tmp_path):
    gt = {"a": np.full((6, 20, 30), 100, np.uint8), "b": np.full((6, 20, 30), 50, np.uint8)}
    pred = {k: np.full((6, 40, 60), int(v[0, 0, 0]), np.uint8) for k, v in gt.items()}
    table, summary, _ = evaluate_folder(_write_all(tmp_path / "p", pred), _write_all(tmp_path / "g", gt),
                                        tmp_path / "o", EvaluationSettings(metrics=("ssim", "psnr")))
    assert table["pred_size"].tolist() == ["40x60"] * 2 and table["gt_size"].tolist() == ["20x30"] * 2
    assert np.isinf(table["psnr"]).all() and summary["ssim"]["mean"] == pytest.approx(1.0)
    ramp = np.tile(np.arange(0, 240, 4, dtype=np.uint8), (6, 10, 1))
    assert resize_volume(ramp, (10, 30)).dtype == np.uint8
    assert resize_volume(ramp, (10, 30)).shape == (6, 10, 30)


class _ConstantClipDetector(torch.nn.Module):
    """A TorchScript stand-in for i3d_torchscript.pt (fast): feature j = mean of the clip * j."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3, 4)).unsqueeze(1) * torch.arange(400, dtype=x.dtype)


def test_fvd_in_summary_with_weights_hash(tmp_path):
    weights = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_ConstantClipDetector()).save(str(weights))
    gt = {f"c{i}": np.full((6, 16, 16), 40 * i, np.uint8) for i in range(3)}
    pred = {k: np.clip(v.astype(int) + 51, 0, 255).astype(np.uint8) for k, v in gt.items()}
    settings = EvaluationSettings(metrics=("psnr", "fvd"), fvd_weights=str(weights), batch_size=2)
    _, summary, _ = evaluate_folder(_write_all(tmp_path / "p", pred), _write_all(tmp_path / "g", gt),
                                    tmp_path / "out", settings)
    assert summary["fvd"]["n_real"] == summary["fvd"]["n_fake"] == 3
    # clip means shift by 51/255*2 = 0.4 with equal spread: FVD = 0.4^2 * sum_j j^2
    assert summary["fvd"]["fvd"] == pytest.approx(0.16 * sum(j * j for j in range(400)), rel=1e-6)
    assert summary["fvd"]["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
