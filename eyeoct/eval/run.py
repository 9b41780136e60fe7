"""Evaluate a prediction folder against ground truth: per-case table, summary JSON, HTML report.

Per case (prediction resized to the ground-truth size, see RESIZE_RULE; data_range 255):
SSIM per B-scan (skimage defaults) and its mean over the six, PSNR per volume, MS-SSIM (mean over
slices), LPIPS (mean over slices), radial inconsistency of prediction and ground truth.
Over the set: FVD (volumes as 16-frame clips), FID and KID (B-scans as images), each with N and the
SHA-256 of the weights used.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from eyeoct.eval.cases import RESIZE_RULE, GroundTruth, match_cases, resize_volume
from eyeoct.eval.report import write_html_report
from eyeoct.metrics import ms_ssim_per_image, psnr_per_volume, radial_inconsistency, ssim_per_image
from eyeoct.volume_io import list_volume_cases, read_volume

logger = logging.getLogger(__name__)

DATA_RANGE = 255.0
ALL_METRICS = ("ssim", "psnr", "msssim", "radial", "lpips", "fvd", "fid", "kid")
DEFAULT_METRICS = ("ssim", "psnr", "msssim", "radial")


@dataclass
class EvaluationSettings:
    """What to compute and from which local weights (None: the EYEOCT_* environment variables)."""

    metrics: tuple[str, ...] = DEFAULT_METRICS
    fvd_weights: str | None = None
    inception_weights: str | None = None
    lpips_backbone: str | None = None
    lpips_linear: str | None = None
    lpips_net: str = "alex"
    radial_band: int = 3
    device: str = "cpu"
    batch_size: int = 8
    gt_data_root: str | None = None

    def __post_init__(self):
        unknown = [m for m in self.metrics if m not in ALL_METRICS]
        if unknown or not self.metrics:
            raise ValueError(f"unknown metric(s) {unknown or '(none given)'}; choose from {', '.join(ALL_METRICS)}")


def default_output_dir(pred_dir: Path) -> Path:
    """`<pred>_eval/` beside the prediction folder, or `<pred>_eval_<k>/` if that exists already."""
    base = pred_dir.parent / f"{pred_dir.name}_eval"
    candidate, k = base, 1
    while candidate.exists():
        candidate, k = base.with_name(f"{base.name}_{k}"), k + 1
    return candidate


class _BatchedFeatures:
    """Feeds volumes to a feature extractor in batches, keeping only the features."""

    def __init__(self, extractor, batch_size: int):
        self.extractor, self.batch_size, self.pending, self.features = extractor, batch_size, [], []

    def add(self, volume: np.ndarray) -> None:
        self.pending.append(volume)
        if len(self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.features.append(self.extractor.volume_features(self.pending))
            self.pending = []

    def result(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self.features)


def _load_pair(pred_dir: Path, truth: GroundTruth, case_id: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(prediction resized to the ground-truth size, ground truth, original prediction H,W), uint8 [6,H,W]."""
    target, pred = truth.load(case_id), read_volume(pred_dir / case_id)
    return resize_volume(pred, target.shape[-2:]), target, pred.shape[-2:]


def _case_metrics(pred: np.ndarray, gt: np.ndarray, settings: EvaluationSettings, lpips) -> dict:
    p, t = torch.from_numpy(pred).to(settings.device), torch.from_numpy(gt).to(settings.device)
    row: dict = {}
    if "ssim" in settings.metrics:
        per_slice = ssim_per_image(p, t, DATA_RANGE).cpu().numpy()
        row["ssim"] = float(per_slice.mean())
        row.update({f"ssim_{k}": float(v) for k, v in enumerate(per_slice)})
    if "psnr" in settings.metrics:
        row["psnr"] = float(psnr_per_volume(p[None], t[None], DATA_RANGE)[0])
    if "msssim" in settings.metrics:
        row["msssim"] = float(ms_ssim_per_image(p, t, DATA_RANGE).mean())
    if "lpips" in settings.metrics:
        row["lpips"] = float(lpips.volume_distance(pred[None], gt[None])[0])
    if "radial" in settings.metrics:
        row["radial_pred"] = float(radial_inconsistency(pred, DATA_RANGE, settings.radial_band))
        row["radial_gt"] = float(radial_inconsistency(gt, DATA_RANGE, settings.radial_band))
    return row


def _describe(values: pd.Series) -> dict:
    """Mean/median/min/max over all cases (inf kept, e.g. PSNR of identical volumes); std over finite values."""
    finite = values[np.isfinite(values)]
    return {"mean": float(values.mean()), "median": float(values.median()),
            "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()),
            "mean_finite": float(finite.mean()) if len(finite) else None, "n_inf": int((~np.isfinite(values)).sum())}


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _build_extractors(settings: EvaluationSettings):
    """Feature extractors and LPIPS for the requested metrics (each loads local weights or fails clearly)."""
    from eyeoct.metrics.fvd import I3DFeatures
    from eyeoct.metrics.inception import InceptionFeatures
    from eyeoct.metrics.lpips import LPIPS

    i3d = I3DFeatures(settings.fvd_weights, settings.device) if "fvd" in settings.metrics else None
    wants_inception = "fid" in settings.metrics or "kid" in settings.metrics
    inception = InceptionFeatures(settings.inception_weights, settings.device) if wants_inception else None
    lpips = (LPIPS(settings.lpips_backbone, settings.lpips_linear, settings.lpips_net).to(settings.device)
             if "lpips" in settings.metrics else None)
    return i3d, inception, lpips


def _summarize(table: pd.DataFrame, settings: EvaluationSettings, pred_source: str, gt_source: str) -> dict:
    """Protocol description and statistics of every per-case column."""
    summary = {"n_cases": len(table), "pred": pred_source, "gt": gt_source, "data_range": DATA_RANGE,
               "resize_rule": RESIZE_RULE, "metrics": list(settings.metrics),
               "protocol": {"ssim": "skimage defaults (7x7 uniform, sample covariance, K1 0.01, K2 0.03, "
                                    "border 3 cropped) per B-scan, mean over the six slices per case",
                            "psnr": "10*log10(255^2/MSE), MSE over the whole volume (6,H,W) per case; inf if identical",
                            "msssim": "5 scales, Wang 2003 weights, 7x7 uniform window, mean over slices",
                            "radial": f"mean |central {settings.radial_band}-column profile - mean over slices|, "
                                      "[0,1] units; radial_gt is the level of real volumes",
                            "fvd": "I3D Kinetics-400 logits of 16-frame clips (slice floor(i*6/16)), 224x224, [-1,1]",
                            "fid_kid": "Inception-v3 pool features of every B-scan (N counts B-scans)"}}
    for column in table.columns:
        if column not in ("case", "pred_size", "gt_size"):
            summary[column] = _describe(table[column].astype(float))
    return summary


def evaluate_folder(pred_dir: str | Path, gt: str | Path, out_dir: str | Path | None = None,
                    settings: EvaluationSettings | None = None) -> tuple[pd.DataFrame, dict, Path]:
    """Evaluate `pred_dir` (submission layout) against `gt` (same layout or an APTOS CSV).

    Writes `per_case.csv`, `summary.json` and `report.html` into a new output folder (default
    `<pred>_eval/`); an existing `out_dir` is never overwritten. Returns (table, summary, out_dir).
    """
    settings = settings or EvaluationSettings()
    pred_dir = Path(pred_dir)
    out_dir = Path(out_dir) if out_dir is not None else default_output_dir(pred_dir)
    if out_dir.exists():
        raise FileExistsError(f"output folder exists already, refusing to overwrite: {out_dir}")
    truth = GroundTruth.from_path(gt, settings.gt_data_root)
    case_ids = match_cases(list_volume_cases(pred_dir), truth.case_ids, str(pred_dir), truth.source)
    set_metrics = [m for m in ("fvd", "fid", "kid") if m in settings.metrics]
    if set_metrics and len(case_ids) < 2:
        raise ValueError(f"{', '.join(set_metrics)} compare feature distributions and need at least 2 cases, "
                         f"got {len(case_ids)}")
    i3d, inception, lpips = _build_extractors(settings)
    fvd_pred, fvd_gt = (_BatchedFeatures(i3d, settings.batch_size) for _ in range(2)) if i3d else (None, None)
    inc_pred, inc_gt = (_BatchedFeatures(inception, settings.batch_size) for _ in range(2)) if inception else (None, None)

    rows = []
    for index, case_id in enumerate(case_ids):
        pred, target, pred_size = _load_pair(pred_dir, truth, case_id)
        row = {"case": case_id, "pred_size": "x".join(map(str, pred_size)),
               "gt_size": "x".join(map(str, target.shape[-2:]))}
        row.update(_case_metrics(pred, target, settings, lpips))
        rows.append(row)
        for acc_pred, acc_gt in ((fvd_pred, fvd_gt), (inc_pred, inc_gt)):
            if acc_pred is not None:
                acc_pred.add(pred)
                acc_gt.add(target)
        if (index + 1) % 50 == 0:
            logger.info("evaluated %d / %d cases", index + 1, len(case_ids))
    table = pd.DataFrame(rows)
    summary = _summarize(table, settings, str(pred_dir), truth.source)
    if i3d is not None:
        from eyeoct.metrics.fvd import fvd_from_features
        summary["fvd"] = {**fvd_from_features(fvd_gt.result(), fvd_pred.result(), i3d.sha256), "weights": str(i3d.path)}
    if inception is not None:
        from eyeoct.metrics.inception import fid_kid_from_features
        summary["fid_kid"] = {**fid_kid_from_features(inc_gt.result(), inc_pred.result(), inception.sha256),
                              "weights": str(inception.path)}
    if lpips is not None:
        summary["lpips_weights_sha256"] = lpips.sha256

    out_dir.mkdir(parents=True, exist_ok=False)
    table.to_csv(out_dir / "per_case.csv", index=False)
    (out_dir / "summary.json").write_text(json.dumps(_json_safe(summary), indent=2, allow_nan=False))
    write_html_report(out_dir / "report.html", table, summary, lambda case: _load_pair(pred_dir, truth, case)[:2])
    logger.info("wrote %s", out_dir)
    return table, summary, out_dir

