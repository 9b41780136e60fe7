"""Which metrics an evaluation computes: the requested ones that can run on this data with these weights.

Default metrics that cannot run (MS-SSIM on B-scans smaller than 112 px, FVD/FID/KID/LPIPS without local
weights, set metrics with fewer than 2 cases) are skipped with one log line each saying why; a metric the user
asked for explicitly that cannot run is a `MetricUnavailableError` naming the metric and the reason.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from eyeoct.metrics.msssim import MIN_SIZE as MSSSIM_MIN_SIZE
from eyeoct.metrics.weights import (I3D_WEIGHTS, INCEPTION_WEIGHTS, LPIPS_BACKBONE_WEIGHTS, LPIPS_LINEAR_WEIGHTS,
                                    WeightsSpec, resolve_weights)

logger = logging.getLogger(__name__)

ALL_METRICS = ("ssim", "psnr", "msssim", "radial", "thickness", "lpips", "fvd", "fid", "kid")
DEFAULT_METRICS = ("ssim", "psnr", "msssim", "radial", "lpips", "fvd", "fid", "kid")
SET_METRICS = ("fvd", "fid", "kid")  # computed over the whole set of cases, not per case
THICKNESS_MIN_SIZE = 8


class MetricUnavailableError(ValueError):
    """A metric asked for explicitly cannot run on this data or without its weights."""


def check_metric_names(metrics: Sequence[str]) -> None:
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown or '(none given)'}; choose from {', '.join(ALL_METRICS)}")


WEIGHT_FLAGS = {I3D_WEIGHTS.env_var: "--fvd-weights", INCEPTION_WEIGHTS.env_var: "--inception-weights",
                LPIPS_BACKBONE_WEIGHTS.env_var: "--lpips-backbone", LPIPS_LINEAR_WEIGHTS.env_var: "--lpips-linear"}


def _missing_weights(path: str | None, spec: WeightsSpec) -> str | None:
    """Why `spec`'s weights cannot be had: none named (a short reason) or a named file missing (its message)."""
    if path in (None, "") and not os.environ.get(spec.env_var):
        return (f"{spec.metric} needs local weights '{spec.expected_file}' and none were given "
                f"({WEIGHT_FLAGS[spec.env_var]} or {spec.env_var}; see 'Local weights' in the README)")
    try:
        resolve_weights(path, spec)
    except FileNotFoundError as err:
        return str(err)
    return None


def why_not(metric: str, gt_size: tuple[int, int], n_cases: int, weights: dict[str, str | None]) -> str | None:
    """The reason `metric` cannot run on ground truth of `gt_size` (H, W) with `n_cases` cases, or None."""
    height, width = gt_size
    if metric == "msssim" and min(height, width) < MSSSIM_MIN_SIZE:
        return (f"MS-SSIM with 5 scales needs B-scans of at least {MSSSIM_MIN_SIZE}x{MSSSIM_MIN_SIZE} pixels, "
                f"the ground truth is {height}x{width}")
    if metric == "thickness" and min(height, width) < THICKNESS_MIN_SIZE:
        return f"thickness needs B-scans of at least {THICKNESS_MIN_SIZE}x{THICKNESS_MIN_SIZE}, got {height}x{width}"
    if metric in SET_METRICS and n_cases < 2:
        return f"{metric.upper()} compares feature distributions and needs at least 2 cases, got {n_cases}"
    if metric == "fvd":
        return _missing_weights(weights.get("fvd"), I3D_WEIGHTS)
    if metric in ("fid", "kid"):
        return _missing_weights(weights.get("inception"), INCEPTION_WEIGHTS)
    if metric == "lpips":
        return (_missing_weights(weights.get("lpips_backbone"), LPIPS_BACKBONE_WEIGHTS)
                or _missing_weights(weights.get("lpips_linear"), LPIPS_LINEAR_WEIGHTS))
    return None


def plan_metrics(requested: Sequence[str] | None, gt_size: tuple[int, int], n_cases: int,
                 weights: dict[str, str | None]) -> tuple[tuple[str, ...], dict[str, str]]:
    """(metrics to compute, {skipped metric: reason}). `requested` None means the defaults, whose
    inapplicable members are skipped; an explicitly requested metric that cannot run is an error."""
    explicit = requested is not None
    metrics = tuple(requested) if explicit else DEFAULT_METRICS
    check_metric_names(metrics)
    chosen, skipped = [], {}
    for metric in metrics:
        reason = why_not(metric, gt_size, n_cases, weights)
        if reason is None:
            chosen.append(metric)
        elif explicit:
            raise MetricUnavailableError(f"metric '{metric}' cannot run: {reason}")
        else:
            skipped[metric] = reason
            logger.info("skipping default metric %s: %s", metric, reason)
    if not chosen:
        raise MetricUnavailableError(f"none of the metrics {', '.join(metrics)} can run: "
                                     + "; ".join(f"{m}: {r}" for m, r in skipped.items()))
    return tuple(chosen), skipped
