"""The built-in demo: phantom data, both training stages, inference, baselines and evaluation on CPU.

Everything lands in one new folder `runs/demo/<timestamp>/`:

    ae/            stage-1 run (config, checkpoints, TensorBoard, export/ with the scale factor)
    dm/            stage-2 run
    heldout_cf/    the held-out phantom CF photos given to inference
    predictions/   heldout/ (model, submission layout) and retina/ (skimage's real fundus photo)
    baselines/     mean, nn_pixel, nn_encoder, ceiling, oracle and ground_truth volumes
    eval/          the comparison report of every method (report.html, per_case/metrics/differences CSV and
                   JSON, summary.json, plots/, examples/)
    results.md     the results table; report.html is eval/report.html (links into eval/)
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from PIL import Image

from eyeoct.baselines import BaselineSettings, baseline_data, write_baselines
from eyeoct.baselines.ceiling import DEFAULT_K, write_ceiling
from eyeoct.config import load_config, save_config
from eyeoct.data.transforms import unit_to_uint8
from eyeoct.data.datasets import PhantomDataset
from eyeoct.devices import cpu_has_native_bf16
from eyeoct.eval import Comparison, EvaluationSettings, compare_methods
from eyeoct.eval.report import Picture, render_html
from eyeoct.inference.inputs import collect_inputs
from eyeoct.inference.layout import OutputLayout
from eyeoct.inference.loading import load_inference_model
from eyeoct.inference.runner import InferenceOptions, cf_preparer, run_inference
from eyeoct.runs import CONFIG_NAME, claim_run_dir, create_run_dir, run_files
from eyeoct.training import run_training
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER

logger = logging.getLogger(__name__)

AE_CONFIG, DM_CONFIG = "ae/phantom_demo", "dm/phantom_demo"  # packaged configs (eyeoct.config.resolve_config_path)
HELDOUT_PART = "test"
PRECISIONS = ("auto", "fp32", "bf16")
TRAINER_PRECISION = {"fp32": 32, "bf16": "bf16-mixed"}
DEMO_STEPS = {"dpmpp-2m": 10}  # measured on the demo models (README variant table); other samplers: their default
DEMO_METHODS = ("model", "model_single", "mean", "nn_pixel", "nn_encoder", "ceiling", "oracle")
DEMO_BASELINES = DEMO_METHODS[2:]
METHOD_DESCRIPTIONS = {
    "model": "the trained model, per-pixel mean of its samples per eye",
    "model_single": "the trained model, its first sample per eye alone (one draw, as a one-sample submission)",
    "mean": "the mean training volume, the same for every eye",
    "nn_pixel": "the training eye whose CF is closest in pixels",
    "nn_encoder": "the training eye whose CF is closest in the trained model's CF-encoder space",
    "ceiling": f"CF-information ceiling: mean of the {DEFAULT_K} training eyes of the same laterality and pathology "
               "closest in axial length (reads the phantom's hidden parameters)",
    "oracle": "the true B-scans without speckle",
}
TABLE_METRICS = (("ssim", "SSIM", "{:.4f}"), ("psnr", "PSNR (dB)", "{:.2f}"),
                 ("thickness_mae_um", "thickness MAE (um)", "{:.1f}"), ("radial_pred", "radial dev.", "{:.4f}"))


@dataclass
class DemoSettings:
    """What the demo runs; `overrides_*` are `key=value` strings for each stage's config."""

    root: Path = Path("runs")
    sampler: str = DEFAULT_SAMPLER
    steps: int | None = None  # None: DEMO_STEPS, else the sampler's default (ddim 50)
    precision: str = "auto"  # auto: bf16 autocast where the CPU has native bf16 kernels, else fp32
    guidance: float = 1.5  # classifier-free guidance: measured on the demo models, README variant table
    seed: int = 0  # both training stages' run.seed (unless overridden) and the inference sampling seed
    samples_per_input: int = 8  # held-out eyes: the per-pixel mean of K samples is submitted

    overrides_ae: tuple[str, ...] = ()
    overrides_dm: tuple[str, ...] = ()


def resolved_precision(settings: DemoSettings) -> str:
    """`fp32` or `bf16` for both training stages and sampling; `auto` picks bf16 only on CPUs with native bf16
    kernels (AVX512-BF16, AMX), where it is faster; elsewhere oneDNN emulates bf16, many times slower."""
    if settings.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {settings.precision!r}")
    if settings.precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return settings.precision


def _stage(title: str) -> float:
    logger.info("=== %s", title)
    return time.perf_counter()


def stage_configs(settings: DemoSettings, demo_dir: Path) -> dict[str, DictConfig]:
    """The merged configs of both training stages (`ae`, `dm`), the overrides applied; `settings.seed` is
    both stages' `run.seed` unless an override sets it (and the sampling seed of inference)."""
    common = [f"run.seed={settings.seed}", f"trainer.precision={TRAINER_PRECISION[resolved_precision(settings)]}"]
    dm_overrides = [*common, f"model.params.first_stage={demo_dir / 'ae' / 'export'}", *settings.overrides_dm]
    return {"ae": load_config([AE_CONFIG], [*common, *settings.overrides_ae]),
            "dm": load_config([DM_CONFIG], dm_overrides)}


def _train(cfg: DictConfig, run_dir: Path) -> None:
    claim_run_dir(run_dir)
    save_config(cfg, run_dir / CONFIG_NAME)
    run_training(cfg, run_dir)


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


def _prediction_dirs(heldout: Path, baselines: dict[str, Path], samples_per_input: int) -> dict[str, Path]:
    """The folders scored, in table order: the submitted model volumes (`model`, the mean of K samples when
    K > 1), the first sample alone when K > 1 (`model_single`; the runner keeps every sample), the baselines."""
    dirs = {"model": heldout}
    if samples_per_input > 1:
        dirs["model_single"] = OutputLayout(heldout).samples_root(0)
    return dirs | {m: baselines[m] for m in DEMO_BASELINES if m in baselines}


def _results_table(comparison: Comparison) -> str:
    """Markdown table: one row per method, mean [95% interval] per metric."""
    metrics = comparison.metrics.set_index(["method", "metric"])
    shown = [(key, name, fmt) for key, name, fmt in TABLE_METRICS if key in set(comparison.metrics["metric"])]
    lines = ["| method | N | " + " | ".join(name for _, name, _ in shown) + " |", "|" + "---|" * (2 + len(shown))]
    for method in comparison.methods:
        cells = []
        for key, _, fmt in shown:
            row = metrics.loc[(method, key)]
            cells.append(f"{fmt.format(row['mean'])} [{fmt.format(row['ci_low'])}, {fmt.format(row['ci_high'])}]")
        lines.append(f"| {method} | {len(comparison.case_ids)} | " + " | ".join(cells) + " |")
    reference = comparison.per_case["radial_gt"].mean() if "radial_gt" in comparison.per_case else None
    footer = "\nMean over eyes [95% bootstrap interval]."
    if reference is not None:
        footer += f" Radial dev. of the ground-truth volumes themselves: {reference:.4f}."
    return "\n".join(lines) + "\n" + footer + "\n"


def _write_report(demo_dir: Path, comparison: Comparison, retina_montage: Path | None) -> None:
    """The comparison report, also as demo_dir/report.html (links into eval/), with the real-photo montage."""
    content = comparison.content
    if retina_montage is not None:
        content.appendix.append(Picture("The model on a real fundus photograph (skimage.data.retina)",
                                        os.path.relpath(retina_montage, comparison.out_dir),
                                        retina_montage.read_bytes(), "The CF beside its six generated B-scans."))
    (comparison.out_dir / "report.html").write_text(render_html(content), encoding="utf-8")
    base = os.path.relpath(comparison.out_dir, demo_dir) + "/"
    (demo_dir / "report.html").write_text(render_html(content, base), encoding="utf-8")


def run_demo(settings: DemoSettings) -> Path:
    """Run every stage of the demo and return its folder."""
    demo_dir = create_run_dir(settings.root, "demo", subfolders=())
    logger.info("demo folder: %s", demo_dir)
    precision = resolved_precision(settings)
    why = (f"auto: this CPU has {'' if precision == 'bf16' else 'no '}native bf16 kernels"
           if settings.precision == "auto" else "as asked")
    logger.info("precision: %s (%s)", precision, why)
    configs = stage_configs(settings, demo_dir)
    timings = {}

    start = _stage("1/6 stage 1: autoencoder on phantom B-scans")
    _train(configs["ae"], demo_dir / "ae")
    timings["stage1_s"] = time.perf_counter() - start

    start = _stage("2/6 stage 2: fundus-conditioned latent diffusion")
    dm_cfg = configs["dm"]
    _train(dm_cfg, demo_dir / "dm")
    dm_config, dm_ckpt = run_files(demo_dir / "dm")
    timings["stage2_s"] = time.perf_counter() - start

    start = _stage("3/6 baselines: mean volume, nearest neighbour (pixels, CF encoder), CF-information ceiling, "
                   "noise-free oracle")
    data = baseline_data(dm_cfg, [HELDOUT_PART], want_oracle=True)
    height, width = data.heldout[0][0]["oct"].shape[-2:]
    folders = write_baselines(data, demo_dir / "baselines", BaselineSettings(ext="png", info={"demo": str(demo_dir)}),
                              cf_encoder_config=dm_config, cf_encoder_ckpt=dm_ckpt)
    if isinstance(data.train, PhantomDataset):
        folders["ceiling"] = write_ceiling(data.train, data.heldout, demo_dir / "baselines" / "ceiling")
    timings["baselines_s"] = time.perf_counter() - start

    steps = settings.steps or DEMO_STEPS.get(settings.sampler)
    sampling = dict(sampler=settings.sampler, steps=steps, guidance=settings.guidance, seed=settings.seed,
                    precision=precision)
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
    pred_dirs = _prediction_dirs(predictions / "heldout", folders, settings.samples_per_input)
    heldout = data.heldout[0]
    axial_um = (1000.0 * heldout.config.scan_depth_mm / heldout.config.oct_height
                if isinstance(heldout, PhantomDataset) else None)
    eval_settings = EvaluationSettings(metrics=("ssim", "psnr", "radial", "thickness"), axial_um=axial_um,
                                       cf_dir=str(demo_dir / "heldout_cf"))
    comparison = compare_methods(pred_dirs, folders["ground_truth"], demo_dir / "eval", eval_settings,
                                 title="EyeOCT demo: held-out phantom eyes", descriptions=METHOD_DESCRIPTIONS)
    timings["evaluation_s"] = time.perf_counter() - start

    _stage("6/6 report")
    table = _results_table(comparison)
    (demo_dir / "results.md").write_text(table)
    means = comparison.metrics.set_index(["method", "metric"])["mean"]
    (demo_dir / "results.json").write_text(json.dumps(
        {"table": {m: {k: means[(m, k)] for k, _, _ in TABLE_METRICS if (m, k) in means.index}
                   | {"n_cases": len(comparison.case_ids)} for m in comparison.methods},
         "timings_s": {k: round(v, 1) for k, v in timings.items()},
         "sampler": options.sampler, "steps": options.steps, "guidance": settings.guidance, "precision": precision,
         "samples_per_input": settings.samples_per_input}, indent=2) + "\n")
    montages = sorted((predictions / "retina" / "montages").glob("*.png"))
    _write_report(demo_dir, comparison, montages[0] if montages else None)
    logger.info("results on %d held-out phantom eyes:\n%s", len(comparison.case_ids), table)
    logger.info("timings (s): %s", ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    return demo_dir
