"""The comparison tables: per method and metric the mean with its interval, paired differences to the
first method, set metrics, and the per-method summary of the single-folder evaluation."""
from __future__ import annotations

import numpy as np
import pandas as pd

from eyeoct.eval.statistics import Bootstrap, as_record

# Per-case metric columns in display order: (label, higher is better; None where closeness to the ground
# truth's own level matters, as for the radial deviation).
METRIC_INFO = {
    "ssim": ("SSIM", True),
    "psnr": ("PSNR (dB)", True),
    "msssim": ("MS-SSIM", True),
    "lpips": ("LPIPS", False),
    "thickness_mae_px": ("thickness MAE (px)", False),
    "thickness_mae_um": ("thickness MAE (um)", False),
    "radial_pred": ("radial deviation", None),
}
SET_METRIC_KEYS = (("fvd", "fvd", "FVD"), ("fid_kid", "fid", "FID"), ("fid_kid", "kid", "KID"))


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The per-case metric columns of `table` that the tables summarise, in display order."""
    return [column for column in METRIC_INFO if column in table.columns]


def values_by_case(table: pd.DataFrame, method: str, column: str, case_ids: list[str]) -> np.ndarray:
    """[n] float values of one method's column, in the order of `case_ids`."""
    rows = table[table["method"] == method].set_index("case")
    return rows[column].reindex(case_ids).to_numpy(np.float64)


def metric_table(table: pd.DataFrame, methods: list[str], case_ids: list[str], bootstrap: Bootstrap) -> pd.DataFrame:
    """One row per (method, metric): mean and bootstrap interval over the finite cases, and the spread."""
    records = []
    for column in metric_columns(table):
        for method in methods:
            values = values_by_case(table, method, column, case_ids)
            finite = values[np.isfinite(values)]
            spread = {"median": float(np.median(finite)), "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
                      "min": float(finite.min()), "max": float(finite.max())} if len(finite) else {}
            records.append({"method": method, "metric": column, "label": METRIC_INFO[column][0],
                            **as_record(bootstrap.mean_interval(values)), **spread,
                            "n_nonfinite": int(len(values) - len(finite))})
    return pd.DataFrame(records)


def difference_table(table: pd.DataFrame, methods: list[str], case_ids: list[str],
                     bootstrap: Bootstrap) -> pd.DataFrame:
    """One row per (other method, metric): mean paired difference (method - first method), interval, Wilcoxon p."""
    reference, records = methods[0], []
    for column in metric_columns(table):
        base = values_by_case(table, reference, column, case_ids)
        for method in methods[1:]:
            result = bootstrap.paired_difference(base, values_by_case(table, method, column, case_ids))
            records.append({"method": method, "reference": reference, "metric": column,
                            "label": METRIC_INFO[column][0], **as_record(result)})
    columns = ["method", "reference", "metric", "label", "n", "mean", "ci_low", "ci_high", "p_wilcoxon"]
    return pd.DataFrame(records, columns=columns)


def set_metric_table(set_results: dict[str, dict]) -> pd.DataFrame:
    """One row per (method, set metric): value, sample sizes and the weights' SHA-256."""
    records = []
    for method, results in set_results.items():
        for key, field, label in SET_METRIC_KEYS:
            if key in results:
                result = results[key]
                records.append({"method": method, "metric": field, "label": label, "value": float(result[field]),
                                "n_real": result["n_real"], "n_fake": result["n_fake"],
                                "weights_sha256": result["weights_sha256"]})
    columns = ["method", "metric", "label", "value", "n_real", "n_fake", "weights_sha256"]
    return pd.DataFrame(records, columns=columns)


def describe(values: pd.Series) -> dict:
    """Mean/median/min/max over all cases (inf kept, e.g. PSNR of identical volumes); std over finite values."""
    finite = values[np.isfinite(values)]
    return {"mean": float(values.mean()), "median": float(values.median()),
            "std": float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
            "min": float(values.min()), "max": float(values.max()),
            "mean_finite": float(finite.mean()) if len(finite) else None, "n_inf": int((~np.isfinite(values)).sum())}


def method_summary(table: pd.DataFrame, method: str, set_results: dict) -> dict:
    """Statistics of every per-case column of one method (as the single-folder summary has always had)."""
    rows = table[table["method"] == method]
    summary = {"n_cases": len(rows)}
    for column in rows.columns:
        if column not in ("method", "case", "pred_size", "gt_size"):
            summary[column] = describe(rows[column].astype(float))
    return {**summary, **set_results.get(method, {})}
