"""Evaluate one or several prediction folders against one ground truth and write the comparison report.

Output folder (new; an existing one is refused): `report.html` (self-contained), `per_case.csv` (one row per
method and case), `metrics.csv`/`.json` (mean and bootstrap interval per method and metric),
`differences.csv`/`.json` (paired differences to the first method with interval and Wilcoxon p),
`set_metrics.csv` (FVD, FID, KID when computed), `summary.json` (all of it with the protocol), `plots/` and
`examples/` (the report's pictures as PNG files).
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from eyeoct.eval.cases import RESIZE_RULE, GroundTruth, find_cf_images, match_cases
from eyeoct.eval.image_rows import example_row_png, legibility_note, pick_examples
from eyeoct.eval.metric_plan import plan_metrics
from eyeoct.eval.plots import interval_plot, per_slice_plot, scatter_plot
from eyeoct.eval.report import Picture, ReportContent, write_report
from eyeoct.eval.scoring import DATA_RANGE, load_prediction, score_methods
from eyeoct.devices import resolve_device
from eyeoct.eval.settings import EvaluationSettings
from eyeoct.eval.statistics import Bootstrap
from eyeoct.eval.tables import (METRIC_INFO, difference_table, method_summary, metric_columns, metric_table,
                                set_metric_table, values_by_case)
from eyeoct.volume_io import list_volume_cases

logger = logging.getLogger(__name__)

METHOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
MAX_INLINE_CASES = 1000  # larger sets keep their per-case values in per_case.csv only


def protocol(settings: EvaluationSettings, bootstrap: Bootstrap) -> dict[str, str]:
    """How every number of the report is computed."""
    return {
        "ssim": "skimage defaults (7x7 uniform, sample covariance, K1 0.01, K2 0.03, border 3 cropped) per "
                "B-scan, mean over the six slices per case",
        "psnr": "10*log10(255^2/MSE), MSE over the whole volume (6,H,W) per case; inf if identical",
        "msssim": "5 scales, Wang 2003 weights, 7x7 uniform window, mean over slices",
        "lpips": f"LPIPS ({settings.lpips_net}), mean over slices",
        "radial": f"mean |central {settings.radial_band}-column profile - mean over slices|, [0,1] units; "
                  "radial_gt is the level of the real volumes",
        "thickness": "retinal thickness (RPE outer edge - ILM, per A-scan) found by the same gradient method on "
                     "prediction and ground truth (eyeoct/metrics/thickness.py); mean absolute difference per "
                     "slice and over the six, in pixels of the ground truth"
                     + (f", and in micrometres at {settings.axial_um} um per pixel" if settings.axial_um else ""),
        "fvd": "I3D Kinetics-400 logits of 16-frame clips (slice floor(i*6/16)), 224x224, [-1,1]",
        "fid_kid": "Inception-v3 pool features of every B-scan (N counts B-scans)",
        "statistics": bootstrap.describe() + "; non-finite values (PSNR of identical volumes) are left out and "
                      "counted; paired test: two-sided Wilcoxon signed-rank (scipy.stats.wilcoxon, zero "
                      "differences dropped; p = 1 when all differences are zero)",
        "resize": RESIZE_RULE,
    }


def default_output_dir(pred_dir: Path) -> Path:
    """`<pred>_eval/` beside the prediction folder, or `<pred>_eval_<k>/` if that exists already."""
    base = pred_dir.parent / f"{pred_dir.name}_eval"
    candidate, k = base, 1
    while candidate.exists():
        candidate, k = base.with_name(f"{base.name}_{k}"), k + 1
    return candidate


def json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n")


def _check_methods(pred_dirs: dict[str, str | Path]) -> dict[str, Path]:
    if not pred_dirs:
        raise ValueError("no prediction folder given")
    bad = [name for name in pred_dirs if not METHOD_NAME.match(name)]
    if bad:
        raise ValueError(f"method names must be letters, digits and _.+- (starting with a letter or digit), got {bad}")
    return {name: Path(folder) for name, folder in pred_dirs.items()}


@dataclass
class Comparison:
    """What `compare_methods` computed and where it wrote it."""

    out_dir: Path
    methods: dict[str, Path]
    case_ids: list[str]
    per_case: pd.DataFrame
    metrics: pd.DataFrame
    differences: pd.DataFrame
    set_metrics: pd.DataFrame
    summary: dict
    content: ReportContent  # what report.html shows (render_html(content) renders it again)


def _main_metric(per_case: pd.DataFrame) -> str | None:
    """The column that ranks the example eyes and feeds the scatter plot: SSIM when computed."""
    columns = metric_columns(per_case)
    return "ssim" if "ssim" in columns else (columns[0] if columns else None)


def _plots(per_case, metrics, methods, case_ids, bootstrap) -> list[Picture]:
    pictures = []
    if not metrics.empty:
        pictures.append(Picture("Mean per method with bootstrap intervals", "plots/metrics.png",
                                interval_plot(metrics, methods, bootstrap.level)))
    if "ssim_0" in per_case.columns:
        pictures.append(Picture("SSIM per slice", "plots/ssim_per_slice.png",
                                per_slice_plot(per_case, methods, case_ids, bootstrap)))
    if "thickness_mae_px_0" in per_case.columns:
        pictures.append(Picture("Thickness error per slice", "plots/thickness_per_slice.png",
                                per_slice_plot(per_case, methods, case_ids, bootstrap, "thickness_mae_px",
                                               "thickness MAE (px)")))
    main = _main_metric(per_case)
    if len(methods) > 1 and main is not None:
        pictures.append(Picture(f"Per-case {METRIC_INFO[main][0]}: {methods[0]} against each other method",
                                f"plots/scatter_{main}.png", scatter_plot(per_case, methods, case_ids, main),
                                "Each point is one eye; points above the dashed line are eyes where the other "
                                f"method scores higher than {methods[0]}."))
    return pictures


def _cf_photos(truth: GroundTruth, case_ids: list[str], cf_dir: str | None) -> tuple[dict[str, Path], str]:
    """CF photo per case (from --cf, else from the ground truth's CSV) and a sentence saying where from."""
    if cf_dir is not None:
        return find_cf_images(cf_dir, case_ids), f"CF photos from {cf_dir}"
    if truth.cf_paths:
        return {c: truth.cf_paths[c] for c in case_ids if c in truth.cf_paths}, f"CF photos from {truth.source}"
    return {}, ("no CF photos known for these cases (give --cf DIR with <case id>.png/.jpg files, or an APTOS "
                "CSV as --gt): the rows start at the ground truth")


def _examples(per_case, methods, pred_dirs, truth, case_ids, settings) -> tuple[list[Picture], str]:
    from eyeoct.data.images import read_rgb

    main = _main_metric(per_case)
    if settings.examples == 0 or main is None:
        return [], ""
    higher = METRIC_INFO[main][1] is not False
    chosen = pick_examples(values_by_case(per_case, methods[0], main, case_ids), case_ids, settings.examples,
                           settings.seed, higher)
    cf_paths, cf_note = _cf_photos(truth, case_ids, settings.cf_dir)
    pictures, gt_size = [], None
    for index, (label, case_id) in enumerate(chosen, start=1):
        gt = truth.load(case_id)
        gt_size = gt.shape[-2:]
        preds = {m: load_prediction(folder, case_id, gt_size)[0] for m, folder in pred_dirs.items()}
        cf = read_rgb(cf_paths[case_id]) if case_id in cf_paths else None
        value = values_by_case(per_case, methods[0], main, [case_id])[0]
        pictures.append(Picture(f"{label}: {case_id}", f"examples/{index:02d}_{label}.png",
                                example_row_png(gt, preds, settings.example_slices, cf),
                                f"{METRIC_INFO[main][0]} of {methods[0]}: {value:.4f}", css_class="row"))
    n_random = sum(label == "random" for label, _ in chosen)
    columns = ("CF | " if cf_paths else "") + "ground truth | " + " | ".join(methods)
    note = (f"Columns: {columns}. Eyes: the best, median and worst of {methods[0]} by {METRIC_INFO[main][0]}"
            f"{f', then {n_random} at random (seed {settings.seed})' if n_random else ''}. Each tile is labelled "
            f"with its SSIM against the ground truth. {legibility_note(gt_size, settings.example_slices)} "
            f"{cf_note[0].upper() + cf_note[1:]}.")
    return pictures, note


def _reference_notes(per_case: pd.DataFrame, axial_um: float | None) -> list[str]:
    """What the ground truth itself scores where a method's value is read against it."""
    notes = [f"Data range 255; {RESIZE_RULE}."]
    if "radial_gt" in per_case.columns:
        notes.append(f"Radial deviation of the ground-truth volumes themselves: {per_case['radial_gt'].mean():.4f} "
                     "(a method is consistent like real scans when its value is close to this).")
    if "thickness_gt_px" in per_case.columns:
        mean = per_case["thickness_gt_px"].mean()
        micrometres = f" = {mean * axial_um:.0f} um" if axial_um else ""
        notes.append(f"Mean retinal thickness (ILM to RPE) of the ground truth: {mean:.1f} px{micrometres}; the "
                     "thickness MAE is the mean absolute difference per A-scan between prediction and ground truth.")
    return notes


def compare_methods(pred_dirs: dict[str, str | Path], gt: str | Path, out_dir: str | Path | None = None,
                    settings: EvaluationSettings | None = None, title: str | None = None,
                    descriptions: dict[str, str] | None = None) -> Comparison:
    """Score every prediction folder (submission layout, named by the dict's keys; the first is the reference
    of the paired differences) against `gt` (same layout or an APTOS CSV) and write the report folder
    (default `<first pred>_eval/`). `descriptions` says in the report what a method is."""
    settings = settings or EvaluationSettings()
    methods = _check_methods(pred_dirs)
    names = list(methods)
    out_dir = Path(out_dir) if out_dir is not None else default_output_dir(methods[names[0]])
    if out_dir.exists():
        raise FileExistsError(f"output folder exists already, refusing to overwrite: {out_dir}")
    truth = GroundTruth.from_path(gt, settings.gt_data_root)
    case_ids = truth.case_ids
    for folder in methods.values():
        case_ids = match_cases(list_volume_cases(folder), truth.case_ids, str(folder), truth.source)
    gt_size = tuple(truth.load(case_ids[0]).shape[-2:])
    metrics, skipped = plan_metrics(settings.metrics, gt_size, len(case_ids), settings.weights)
    device = resolve_device(settings.device)
    logger.info("evaluating %s on %d cases (%s) on %s", ", ".join(names), len(case_ids), ", ".join(metrics), device)
    per_case, set_results = score_methods(methods, truth, case_ids, metrics, settings, device)
    bootstrap = Bootstrap(settings.bootstrap, settings.seed, settings.level)
    metric_df = metric_table(per_case, names, case_ids, bootstrap)
    difference_df = difference_table(per_case, names, case_ids, bootstrap)
    set_df = set_metric_table(set_results)
    plots = _plots(per_case, metric_df, names, case_ids, bootstrap)
    examples, examples_note = _examples(per_case, names, methods, truth, case_ids, settings)

    summary = {"n_cases": len(case_ids), "gt": truth.source, "data_range": DATA_RANGE, "resize_rule": RESIZE_RULE,
               "metrics": list(metrics), "skipped_metrics": skipped, "reference": names[0],
               "bootstrap": {"resamples": bootstrap.resamples, "seed": bootstrap.seed, "level": bootstrap.level},
               "protocol": protocol(settings, bootstrap),
               "methods": {m: {"pred": str(methods[m]), **method_summary(per_case, m, set_results)} for m in names},
               "tables": {"metrics": metric_df.to_dict("records"), "differences": difference_df.to_dict("records"),
                          "set_metrics": set_df.to_dict("records")}}
    out_dir.mkdir(parents=True, exist_ok=False)
    per_case.to_csv(out_dir / "per_case.csv", index=False)
    files = [("per_case.csv", "every metric per method and case")]
    for name, frame, text in (("metrics", metric_df, "mean, bootstrap interval and spread per method and metric"),
                              ("differences", difference_df, f"paired differences to {names[0]} with Wilcoxon p"),
                              ("set_metrics", set_df, "FVD/FID/KID per method")):
        if not frame.empty:
            frame.to_csv(out_dir / f"{name}.csv", index=False)
            _write_json(out_dir / f"{name}.json", frame.to_dict("records"))
            files += [(f"{name}.csv", text), (f"{name}.json", "the same table as JSON records")]
    _write_json(out_dir / "summary.json", summary)
    files.append(("summary.json", "everything above with the protocol"))

    main = _main_metric(per_case)
    inline = (per_case.pivot(index="case", columns="method", values=main)[names].reset_index()
              if main is not None and len(case_ids) <= MAX_INLINE_CASES else None)
    content = ReportContent(
        title=title or f"EyeOCT evaluation: {', '.join(names)}",
        setup=(("Ground truth", f"{truth.source} ({len(case_ids)} cases, B-scans {gt_size[0]}x{gt_size[1]})"),
               *((f"Method {m}", (f"{descriptions[m]} ({folder})" if m in (descriptions or {}) else str(folder)))
                 for m, folder in methods.items()),
               ("Metrics", ", ".join(metrics)),
               *((f"Skipped {m}", reason) for m, reason in skipped.items()),
               ("Statistics", bootstrap.describe()),
               ("Paired test", "two-sided Wilcoxon signed-rank test of the per-case differences to "
                               f"{names[0]} (scipy.stats.wilcoxon)")),
        methods=names, metrics=metric_df, differences=difference_df, set_metrics=set_df, plots=plots,
        examples=examples, examples_note=examples_note, files=files, protocol=summary["protocol"],
        notes=_reference_notes(per_case, settings.axial_um),
        per_case=inline)
    write_report(out_dir, content)
    logger.info("wrote %s", out_dir / "report.html")
    return Comparison(out_dir, methods, case_ids, per_case, metric_df, difference_df, set_df, summary, content)


def evaluate_folder(pred_dir: str | Path, gt: str | Path, out_dir: str | Path | None = None,
                    settings: EvaluationSettings | None = None) -> tuple[pd.DataFrame, dict, Path]:
    """One prediction folder against `gt`: the comparison report with one method. Returns (per-case table
    without the method column, the method's summary with n_cases and the protocol, output folder)."""
    name = Path(pred_dir).name if METHOD_NAME.match(Path(pred_dir).name) else "prediction"
    comparison = compare_methods({name: pred_dir}, gt, out_dir, settings)
    summary = {**comparison.summary["methods"][name],
               **{k: comparison.summary[k] for k in ("gt", "data_range", "resize_rule", "metrics",
                                                     "skipped_metrics", "protocol")}}
    return comparison.per_case.drop(columns="method"), summary, comparison.out_dir
