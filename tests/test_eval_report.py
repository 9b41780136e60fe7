"""The comparison report (eyeoct.eval.compare_methods, scripts/evaluate.py with several --pred) on phantom eyes."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats
from scipy.ndimage import gaussian_filter

from eyeoct.data.phantom import PhantomConfig, render_case
from eyeoct.eval import EvaluationSettings, MetricUnavailableError, compare_methods
from eyeoct.devices import resolve_device
from eyeoct.eval.image_rows import GAP, HEADER, pick_examples, tile_size
from eyeoct.eval.statistics import Bootstrap
from eyeoct.volume_io import write_volume
from script_helpers import script_env, script_main, script_path

PHANTOM = PhantomConfig(cf_size=48, oct_height=64, oct_width=96)
IDS = [f"eye{i}" for i in range(5)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Ground truth (speckled phantom eyes), oracle (noise-free), blur (smoothed truth), copy (the oracle again),
    and the CF photos (eye<i>.png)."""
    root = tmp_path_factory.mktemp("compare")
    for index, case_id in enumerate(IDS):
        case, clean = render_case(0, index, PHANTOM), render_case(0, index, PHANTOM, noise_free=True)
        write_volume(root / "gt", case_id, case.oct)
        write_volume(root / "oracle", case_id, clean.oct)
        write_volume(root / "copy", case_id, clean.oct)
        blurred = gaussian_filter(case.oct.astype(float), (0, 2, 2))
        write_volume(root / "blur", case_id, np.clip(np.rint(blurred), 0, 255).astype(np.uint8))
        (root / "cf").mkdir(exist_ok=True)
        Image.fromarray(case.cf).save(root / "cf" / f"{case_id}.png")
    return root


def _settings(**kwargs):
    return EvaluationSettings(**{"metrics": ("ssim", "psnr", "thickness"), "bootstrap": 1000, "examples": 4,
                                 "device": "cpu", "progress": False, **kwargs})


COMPARED = ("oracle", "blur", "copy")


@pytest.fixture(scope="module")
def comparison_out(folders, tmp_path_factory):
    """The output folder of comparing oracle, blur and copy with the ground truth (oracle the reference)."""
    methods = {m: folders / m for m in COMPARED}
    out = tmp_path_factory.mktemp("out") / "out"
    return compare_methods(methods, folders / "gt", out, _settings(axial_um=30.0)).out_dir


def test_comparison_writes_every_file(comparison_out):
    out = comparison_out
    for name in ("report.html", "per_case.csv", "metrics.csv", "metrics.json", "differences.csv", "differences.json",
                 "summary.json", "plots/metrics.png", "plots/ssim_per_slice.png", "plots/thickness_per_slice.png",
                 "plots/scatter_ssim.png"):
        assert (out / name).is_file(), name


def test_comparison_per_case_table(comparison_out):
    per_case = pd.read_csv(comparison_out / "per_case.csv")
    assert list(per_case.columns[:4]) == ["method", "case", "pred_size", "gt_size"]
    assert {"ssim", "psnr", "thickness_mae_px", "thickness_mae_um", "thickness_gt_px", "ssim_5",
            "thickness_mae_px_5"} <= set(per_case.columns)
    assert len(per_case) == 3 * len(IDS) and per_case["gt_size"].eq("64x96").all()
    np.testing.assert_allclose(per_case["thickness_mae_um"], 30.0 * per_case["thickness_mae_px"])


def test_comparison_metrics_are_bootstrap_means_with_intervals(comparison_out):
    out = comparison_out
    per_case = pd.read_csv(out / "per_case.csv")
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns) == ["method", "metric", "label", "n", "n_total", "mean", "ci_low", "ci_high",
                                     "median", "std", "min", "max", "n_nonfinite"]
    pd.testing.assert_frame_equal(pd.DataFrame(json.loads((out / "metrics.json").read_text())), metrics,
                                  check_dtype=False, rtol=1e-12)
    bootstrap = Bootstrap(1000, 0)
    for method in COMPARED:
        values = per_case[per_case["method"] == method].set_index("case").loc[IDS, "ssim"].to_numpy()
        row = metrics[(metrics["method"] == method) & (metrics["metric"] == "ssim")].iloc[0]
        expected = bootstrap.mean_interval(values)
        assert (row["mean"], row["ci_low"], row["ci_high"]) == pytest.approx(
            (expected.mean, expected.ci_low, expected.ci_high), abs=1e-12)
    ssim = metrics.set_index(["method", "metric"])["mean"]
    assert ssim[("oracle", "ssim")] > ssim[("blur", "ssim")]
    # identical volumes: PSNR inf for the copy's cases is left out of the interval and counted
    psnr = metrics.set_index(["method", "metric"]).loc[("copy", "psnr")]
    assert psnr["n"] == len(IDS) and psnr["n_nonfinite"] == 0  # the copy is compared with the speckled truth


def test_comparison_differences_to_the_reference(comparison_out):
    out = comparison_out
    per_case = pd.read_csv(out / "per_case.csv")
    differences = pd.read_csv(out / "differences.csv").set_index(["method", "metric"])
    assert list(differences.reset_index().columns) == ["method", "metric", "reference", "label", "n", "mean",
                                                       "ci_low", "ci_high", "p_wilcoxon"]
    assert (differences["reference"] == "oracle").all()
    same = differences.loc[("copy", "ssim")]  # the copy is the oracle again: nothing differs
    assert (same["mean"], same["ci_low"], same["ci_high"], same["p_wilcoxon"]) == (0.0, 0.0, 0.0, 1.0)
    assert differences.loc[("copy", "thickness_mae_px"), "mean"] == 0.0
    by_case = per_case.set_index(["method", "case"])["ssim"]
    delta = np.array([by_case[("blur", c)] - by_case[("oracle", c)] for c in IDS])
    assert differences.loc[("blur", "ssim"), "mean"] == pytest.approx(delta.mean(), abs=1e-12)
    assert differences.loc[("blur", "ssim"), "p_wilcoxon"] == pytest.approx(stats.wilcoxon(delta).pvalue)


def test_comparison_summary(comparison_out, folders):
    summary = json.loads((comparison_out / "summary.json").read_text())
    assert summary["reference"] == "oracle" and list(summary["methods"]) == ["oracle", "blur", "copy"]
    assert summary["bootstrap"] == {"resamples": 1000, "seed": 0, "level": 0.95}
    assert summary["methods"]["blur"]["pred"] == str(folders / "blur")


def test_example_rows_start_at_the_cf_when_one_is_known(folders, tmp_path):
    methods = {m: folders / m for m in ("oracle", "blur")}
    height, width = tile_size(64, 96)
    assert (height, width) == (192, 288)  # 3x nearest-neighbour enlargement
    with_cf = compare_methods(methods, folders / "gt", tmp_path / "cf", _settings(cf_dir=str(folders / "cf")))
    without = compare_methods(methods, folders / "gt", tmp_path / "nocf", _settings(examples=2))
    rows = sorted((with_cf.out_dir / "examples").glob("*.png"))
    assert [p.name for p in rows] == ["01_best.png", "02_median.png", "03_worst.png", "04_random.png"]
    row = Image.open(rows[0])
    assert row.size == (height + 3 * width + 3 * GAP, HEADER + height)  # the square CF as tall as the B-scans
    assert Image.open(sorted((without.out_dir / "examples").glob("*.png"))[0]).size == (3 * width + 2 * GAP,
                                                                                         HEADER + height)
    assert len(list((without.out_dir / "examples").glob("*.png"))) == 2
    assert "rows start at the ground truth" in (without.out_dir / "report.html").read_text()
    assert "Columns: CF | ground truth | oracle | blur" in (with_cf.out_dir / "report.html").read_text()


def test_pick_examples_best_median_worst_then_seeded_random():
    ids = [f"c{i}" for i in range(9)]
    values = np.array([0.5, 0.9, 0.1, 0.7, 0.3, 0.6, 0.2, 0.8, 0.4])
    picks = pick_examples(values, ids, 6, seed=3)
    assert picks[:3] == [("best", "c1"), ("median", "c0"), ("worst", "c2")]  # 0.9, 0.5, 0.1
    assert [label for label, _ in picks[3:]] == ["random"] * 3 and picks == pick_examples(values, ids, 6, seed=3)
    assert len({c for _, c in picks}) == 6
    assert pick_examples(values, ids, 2, seed=3) == picks[:2]
    assert pick_examples(values, ids, 3, seed=0, higher_is_better=False)[0] == ("best", "c2")


def test_html_is_escaped_and_links_survive_moving_the_folder(folders, tmp_path):
    odd = tmp_path / "odd"
    for name in ("gt", "oracle"):
        shutil.copytree(folders / name / "eye0", odd / name / "a<b>&c", dirs_exist_ok=True)
        for path in (odd / name / "a<b>&c").iterdir():
            path.rename(path.with_name(path.name.replace("eye0", "a<b>&c")))
        shutil.copytree(folders / name / "eye1", odd / name / "eye1")
    out = compare_methods({"oracle": odd / "oracle"}, odd / "gt", tmp_path / "report", _settings()).out_dir
    text = (out / "report.html").read_text()
    assert "a&lt;b&gt;&amp;c" in text and "a<b>" not in text
    moved = Path(shutil.move(str(out), tmp_path / "elsewhere" / "moved"))
    html = (moved / "report.html").read_text()
    links = re.findall(r"href='([^']+)'", html)
    assert links and all((moved / link).is_file() for link in links)
    assert not any(link.startswith(("/", "file:")) for link in links)


def test_default_metrics_skip_what_cannot_run_and_explicit_ones_fail(folders, tmp_path, monkeypatch):
    for var in ("EYEOCT_I3D_WEIGHTS", "EYEOCT_INCEPTION_WEIGHTS", "EYEOCT_LPIPS_BACKBONE", "EYEOCT_LPIPS_LINEAR"):
        monkeypatch.delenv(var, raising=False)
    comparison = compare_methods({"oracle": folders / "oracle"}, folders / "gt", tmp_path / "d",
                                 EvaluationSettings(bootstrap=100, examples=0, progress=False))
    assert comparison.summary["metrics"] == ["ssim", "psnr", "radial"]
    skipped = comparison.summary["skipped_metrics"]
    assert set(skipped) == {"msssim", "lpips", "fvd", "fid", "kid"}
    assert "112x112" in skipped["msssim"] and "64x96" in skipped["msssim"]
    assert "EYEOCT_I3D_WEIGHTS" in skipped["fvd"]
    with pytest.raises(MetricUnavailableError, match="metric 'msssim' cannot run: .*112x112"):
        compare_methods({"oracle": folders / "oracle"}, folders / "gt", tmp_path / "e",
                        EvaluationSettings(metrics=("ssim", "msssim"), progress=False))
    assert not (tmp_path / "e").exists()


SCRIPT = script_path("evaluate")


def _environment() -> dict:
    return {k: v for k, v in script_env().items() if not k.startswith("EYEOCT_")}  # no metric weights


def test_cli_compares_named_folders_with_the_default_metrics(folders, tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--pred", f"oracle={folders / 'oracle'}",
                             "--pred", f"blur={folders / 'blur'}", "--gt", str(folders / "gt"),
                             "--out", str(tmp_path / "cli"), "--bootstrap", "200", "--examples", "1"],
                            capture_output=True, text=True, env=_environment())
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["n_cases"] == len(IDS) and list(printed["means"]) == ["oracle", "blur"]
    assert printed["means"]["oracle"]["ssim"] > printed["means"]["blur"]["ssim"]
    assert re.search(r"skipping default metric msssim: MS-SSIM .* 112x112 .* 64x96", result.stderr)
    assert "skipping default metric fvd" in result.stderr
    assert "evaluating cases" not in result.stderr  # no progress bar off a terminal


@pytest.mark.parametrize("metrics, expected", [("psnr,msssim", ["metric 'msssim' cannot run", "112x112"]),
                                               ("fvd", ["metric 'fvd' cannot run", "EYEOCT_I3D_WEIGHTS"])])
def test_cli_metric_asked_for_that_cannot_run_is_a_one_line_error(folders, tmp_path, monkeypatch, capsys,
                                                                  metrics, expected):
    for var in ("EYEOCT_I3D_WEIGHTS", "EYEOCT_INCEPTION_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        script_main("evaluate")(["--pred", str(folders / "oracle"), "--gt", str(folders / "gt"), "--metrics", metrics,
                             "--out", str(tmp_path / "bad")])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("evaluate.py: error: ") and all(text in lines[-1] for text in expected)
    assert not any("Traceback" in line for line in lines) and not (tmp_path / "bad").exists()


def test_cli_repeated_method_names_are_refused(folders, capsys):
    with pytest.raises(SystemExit):
        script_main("evaluate")(["--pred", f"a={folders / 'oracle'}", "--pred", f"a={folders / 'blur'}",
                             "--gt", str(folders / "gt")])
    assert "method names repeat" in capsys.readouterr().err


def test_progress_bar_on_a_terminal_unless_quiet(folders, tmp_path):
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    def run_on_terminal(*extra):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal 100 wide
        process = subprocess.Popen([sys.executable, str(SCRIPT), "--pred", str(folders / "oracle"), "--gt",
                                    str(folders / "gt"), "--metrics", "psnr", "--examples", "0", "--bootstrap", "50",
                                    *extra], stdout=subprocess.DEVNULL, stderr=follower, env=_environment())
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait() == 0
        os.close(leader)
        return b"".join(chunks).decode(errors="replace")

    assert re.search(r"evaluating cases: 100%.*5/5", run_on_terminal("--out", str(tmp_path / "tty")))
    assert "evaluating cases" not in run_on_terminal("--out", str(tmp_path / "quiet"), "--quiet")


def test_device_auto_follows_cuda_availability():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto") and resolve_device("cpu") == "cpu"
    assert EvaluationSettings().device == "auto"


def test_demo_report_is_the_comparison_with_links_into_eval(folders, tmp_path):
    from eyeoct.demo import METHOD_DESCRIPTIONS, _results_table, _write_report

    demo_dir = tmp_path / "demo"
    methods = {"model": folders / "blur", "oracle": folders / "oracle"}
    comparison = compare_methods(methods, folders / "gt", demo_dir / "eval", _settings(metrics=("ssim", "psnr")),
                                 descriptions=METHOD_DESCRIPTIONS)
    montage = demo_dir / "predictions" / "retina" / "montages" / "retina.png"
    montage.parent.mkdir(parents=True)
    Image.new("RGB", (30, 20), "red").save(montage)
    _write_report(demo_dir, comparison, montage)
    for page in (demo_dir / "report.html", demo_dir / "eval" / "report.html"):
        html = page.read_text()
        links = re.findall(r"href='([^']+)'", html)
        assert "retina.png" in html and all((page.parent / link).is_file() for link in links), page
        assert METHOD_DESCRIPTIONS["oracle"] in html
    assert (demo_dir / "report.html").read_text().count("href='eval/") >= 4
    table = _results_table(comparison).splitlines()
    assert table[0] == "| method | N | SSIM | PSNR (dB) |"
    means = comparison.metrics.set_index(["method", "metric"])
    row = means.loc[("oracle", "ssim")]
    assert table[3].startswith(f"| oracle | {len(IDS)} | {row['mean']:.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}]")


def test_demo_scores_the_first_sample_beside_the_mean_of_k(tmp_path):
    from eyeoct.demo import DEMO_METHODS, _prediction_dirs

    heldout, baselines = tmp_path / "heldout", {m: tmp_path / m for m in ("oracle", "mean", "ground_truth")}
    dirs = _prediction_dirs(heldout, baselines, samples_per_input=8)
    assert list(dirs) == ["model", "model_single", "mean", "oracle"] and DEMO_METHODS[:2] == ("model", "model_single")
    assert dirs["model"] == heldout and dirs["model_single"] == heldout / "samples" / "s0"  # the runner's sample 0
    assert list(_prediction_dirs(heldout, baselines, samples_per_input=1)) == ["model", "mean", "oracle"]
