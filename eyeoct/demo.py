"""The built-in demo: phantom data, both training stages, inference, baselines and evaluation on CPU.

Everything lands in one new folder `runs/demo/<timestamp>/`:

    ae/            stage-1 run (config, checkpoints, TensorBoard, export/ with the scale factor)
    dm/            stage-2 run
    heldout_cf/    the held-out phantom CF photos given to inference
    predictions/   heldout/ (model, submission layout) and retina/ (skimage's real fundus photo)
    baselines/     mean, nn_pixel, nn_encoder, oracle and ground_truth volumes
    eval/          one evaluation folder per method (per_case.csv, summary.json, report.html)
    results.md     the results table; report.html links everything
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from eyeoct.baselines import BaselineSettings, baseline_data, write_baselines
from eyeoct.config import load_config, save_config
from eyeoct.data.transforms import unit_to_uint8
from eyeoct.eval.run import EvaluationSettings, evaluate_folder
from eyeoct.inference.inputs import collect_inputs
from eyeoct.inference.loading import load_inference_model
from eyeoct.inference.runner import InferenceOptions, cf_preparer, run_inference
from eyeoct.runs import CONFIG_NAME, claim_run_dir, create_run_dir
from eyeoct.training import run_training
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER

logger = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
HELDOUT_PART = "test"
METHODS = ("model", "mean", "nn_pixel", "nn_encoder", "oracle")
TABLE_METRICS = (("ssim", "SSIM", "{:.4f}"), ("psnr", "PSNR (dB)", "{:.2f}"),
                 ("radial_pred", "radial dev.", "{:.4f}"))


@dataclass
class DemoSettings:
    """What the demo runs; `overrides_*` are `key=value` strings for each stage's config."""

    root: Path = Path("runs")
    sampler: str = DEFAULT_SAMPLER
    steps: int | None = None  # None: the sampler's default (dpmpp-2m 15, ddim 50)
    guidance: float = 1.0
    seed: int = 0
    samples_per_input: int = 8  # held-out eyes: the per-pixel mean of K samples is submitted

    overrides_ae: tuple[str, ...] = ()
    overrides_dm: tuple[str, ...] = ()


def _stage(title: str) -> float:
    logger.info("=== %s", title)
    return time.perf_counter()


def _train(config_file: Path, overrides: list[str], run_dir: Path) -> DictConfig:
    cfg = load_config([config_file], overrides)
    claim_run_dir(run_dir)
    save_config(cfg, run_dir / CONFIG_NAME)
    run_training(cfg, run_dir)
    return cfg


def _write_heldout_cfs(dataset, folder: Path) -> list[str]:
    """Save each held-out case's preprocessed CF as a lossless PNG, named by case id."""
    folder.mkdir(parents=True)
    ids = []
    for index in range(len(dataset)):
        item = dataset[index]
        Image.fromarray(unit_to_uint8(item["cf"]).transpose(1, 2, 0)).save(folder / f"{item['id']}.png")
        ids.append(item["id"])
    return ids


def _write_retina(folder: Path) -> Path:
    from skimage.data import retina

    folder.mkdir(parents=True)
    path = folder / "skimage_retina.jpg"
    Image.fromarray(retina()).save(path, quality=95)
    return path


def _results_table(summaries: dict[str, dict]) -> str:
    header = "| method | N | " + " | ".join(name for _, name, _ in TABLE_METRICS) + " |"
    lines = [header, "|" + "---|" * (2 + len(TABLE_METRICS))]
    for method, summary in summaries.items():
        cells = [fmt.format(summary[key]["mean"]) if key in summary else "-" for key, _, fmt in TABLE_METRICS]
        lines.append(f"| {method} | {summary['n_cases']} | " + " | ".join(cells) + " |")
    reference = next(iter(summaries.values())).get("radial_gt")
    if reference:
        lines.append(f"\nradial dev. of the ground-truth volumes themselves: {reference['mean']:.4f}")
    return "\n".join(lines) + "\n"


def _report_html(demo_dir: Path, table_md: str, eval_dirs: dict[str, Path], retina_montage: Path | None) -> str:
    rows = []
    for line in table_md.strip().splitlines():
        if set(line.replace("|", "").strip()) <= {"-"}:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        tag = "th" if not rows else "td"
        rows.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
    links = "".join(f'<li><a href="{d.relative_to(demo_dir)}/report.html">{m}</a></li>' for m, d in eval_dirs.items())
    retina = (f'<h2>Real fundus photograph (skimage.data.retina)</h2><img src="{retina_montage.relative_to(demo_dir)}">'
              if retina_montage else "")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>EyeOCT demo</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;text-align:right}}</style>"
            f"</head><body><h1>EyeOCT demo: held-out phantom eyes</h1><table>{''.join(rows)}</table>"
            f"<p>SSIM and PSNR: higher is better; radial deviation: disagreement of the six slices' shared "
            f"central A-scan, lower is better (the ground truth's own level is in each report).</p>"
            f"<h2>Per-method reports</h2><ul>{links}</ul>{retina}</body></html>")


def run_demo(settings: DemoSettings) -> Path:
    """Run every stage of the demo and return its folder."""
    demo_dir = create_run_dir(settings.root, "demo", subfolders=())
    logger.info("demo folder: %s", demo_dir)
    timings = {}

    start = _stage("1/6 stage 1: autoencoder on phantom B-scans")
    _train(CONFIG_DIR / "ae" / "phantom_demo.yaml", list(settings.overrides_ae), demo_dir / "ae")
    timings["stage1_s"] = time.perf_counter() - start

    start = _stage("2/6 stage 2: fundus-conditioned latent diffusion")
    dm_overrides = [f"model.params.first_stage={demo_dir / 'ae' / 'export'}", *settings.overrides_dm]
    dm_cfg = _train(CONFIG_DIR / "dm" / "phantom_demo.yaml", dm_overrides, demo_dir / "dm")
    dm_config, dm_ckpt = demo_dir / "dm" / CONFIG_NAME, demo_dir / "dm" / "checkpoints" / "last.ckpt"
    timings["stage2_s"] = time.perf_counter() - start

    start = _stage("3/6 baselines: mean volume, nearest neighbour (pixels, CF encoder), noise-free oracle")
    data = baseline_data(dm_cfg, [HELDOUT_PART], want_oracle=True)
    height, width = data.heldout[0][0]["oct"].shape[-2:]
    folders = write_baselines(data, demo_dir / "baselines", BaselineSettings(ext="png", info={"demo": str(demo_dir)}),
                              cf_encoder_config=dm_config, cf_encoder_ckpt=dm_ckpt)
    timings["baselines_s"] = time.perf_counter() - start

    sampling = dict(sampler=settings.sampler, steps=settings.steps, guidance=settings.guidance, seed=settings.seed)
    options = InferenceOptions(**sampling, batch_size=16, samples_per_input=settings.samples_per_input,
                               submit="mean" if settings.samples_per_input > 1 else "first",
                               size=(int(width), int(height)), ext="png", checkpoint=str(dm_ckpt))
    start = _stage(f"4/6 inference: {options.sampler}, {options.steps} steps, {settings.samples_per_input} samples "
                   f"per held-out eye (their mean is scored), and a real photograph")
    loaded = load_inference_model(dm_config, dm_ckpt, "cpu")
    _write_heldout_cfs(data.heldout[0], demo_dir / "heldout_cf")
    predictions = demo_dir / "predictions"
    run_inference(loaded.model, cf_preparer(loaded.cf_size), collect_inputs(demo_dir / "heldout_cf"),
                  predictions / "heldout", options)
    retina_path = _write_retina(demo_dir / "inputs")
    retina_options = InferenceOptions(**sampling, size=(448, 320), ext="jpg", checkpoint=str(dm_ckpt))
    run_inference(loaded.model, cf_preparer(loaded.cf_size), collect_inputs(retina_path),
                  predictions / "retina", retina_options)
    timings["inference_s"] = time.perf_counter() - start

    start = _stage("5/6 evaluation against the held-out ground truth")
    pred_dirs = {"model": predictions / "heldout", **{m: folders[m] for m in METHODS if m in folders}}
    eval_settings = EvaluationSettings(metrics=("ssim", "psnr", "radial"))
    summaries, eval_dirs = {}, {}
    for method, pred_dir in pred_dirs.items():
        _, summary, eval_dirs[method] = evaluate_folder(pred_dir, folders["ground_truth"],
                                                        demo_dir / "eval" / method, eval_settings)
        summaries[method] = summary
    timings["evaluation_s"] = time.perf_counter() - start

    _stage("6/6 report")
    table = _results_table(summaries)
    (demo_dir / "results.md").write_text(table)
    (demo_dir / "results.json").write_text(json.dumps(
        {"table": {m: {k: s[k]["mean"] for k, _, _ in TABLE_METRICS if k in s} | {"n_cases": s["n_cases"]}
                   for m, s in summaries.items()},
         "timings_s": {k: round(v, 1) for k, v in timings.items()},
         "sampler": options.sampler, "steps": options.steps, "guidance": settings.guidance,
         "samples_per_input": settings.samples_per_input}, indent=2) + "\n")
    montages = sorted((predictions / "retina" / "montages").glob("*.png"))
    (demo_dir / "report.html").write_text(_report_html(demo_dir, table, eval_dirs, montages[0] if montages else None))
    logger.info("results on %d held-out phantom eyes:\n%s", summaries["model"]["n_cases"], table)
    logger.info("timings (s): %s", ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    return demo_dir
