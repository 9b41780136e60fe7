"""The report's plots as PNG bytes, drawn with matplotlib's Agg canvas (no pyplot, no global backend state)."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from eyeoct.eval.statistics import Bootstrap
from eyeoct.eval.tables import METRIC_INFO, values_by_case
from eyeoct.case_layout import NUM_SLICES

DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _colours(methods: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {method: palette(index % 10) for index, method in enumerate(methods)}


def interval_plot(metrics: pd.DataFrame, methods: list[str], level: float) -> bytes:
    """One panel per metric: each method's mean with its bootstrap interval (metrics: the metric table)."""
    names = list(dict.fromkeys(metrics["metric"]))
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(4.2 * columns, 0.45 * len(methods) * rows + 1.3 * rows))
    colours = _colours(methods)
    for index, name in enumerate(names):
        axis = figure.add_subplot(rows, columns, index + 1)
        part = metrics[metrics["metric"] == name].set_index("method").reindex(methods)
        y = np.arange(len(methods))[::-1]
        for position, method in zip(y, methods):
            mean, low, high = part.loc[method, ["mean", "ci_low", "ci_high"]].astype(float)
            axis.errorbar([mean], [position], xerr=[[mean - low], [high - mean]], fmt="o", capsize=4,
                          color=colours[method])
        axis.set_yticks(y, methods)
        direction = {True: " (higher is better)", False: " (lower is better)"}.get(METRIC_INFO[name][1], "")
        axis.set_title(METRIC_INFO[name][0] + direction, fontsize=10)
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(f"Mean over cases with {level:.0%} bootstrap intervals", fontsize=11)
    figure.tight_layout()
    return _png(figure)


def per_slice_plot(table: pd.DataFrame, methods: list[str], case_ids: list[str], bootstrap: Bootstrap,
                   prefix: str = "ssim", label: str = "SSIM") -> bytes:
    """`label` per slice 0..5 for each method: mean over cases with bootstrap intervals."""
    figure = Figure(figsize=(7.0, 4.0))
    axis = figure.add_subplot(1, 1, 1)
    colours = _colours(methods)
    offsets = np.linspace(-0.15, 0.15, len(methods)) if len(methods) > 1 else [0.0]
    for offset, method in zip(offsets, methods):
        stats = [bootstrap.mean_interval(values_by_case(table, method, f"{prefix}_{k}", case_ids))
                 for k in range(NUM_SLICES)]
        means = np.array([s.mean for s in stats])
        errors = np.array([[s.mean - s.ci_low for s in stats], [s.ci_high - s.mean for s in stats]])
        axis.errorbar(np.arange(NUM_SLICES) + offset, means, yerr=errors, fmt="o-", capsize=3, label=method,
                      color=colours[method])
    axis.set_xticks(range(NUM_SLICES), [f"slice {k}\n{30 * k} deg" for k in range(NUM_SLICES)])
    axis.set_ylabel(label)
    axis.set_title(f"{label} per B-scan (mean over cases, {bootstrap.level:.0%} intervals)", fontsize=11)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def scatter_plot(table: pd.DataFrame, methods: list[str], case_ids: list[str], column: str) -> bytes:
    """Per-case `column` of the first method (x) against each other method (y), with the line y = x."""
    others = methods[1:]
    columns = min(3, len(others))
    rows = -(-len(others) // columns)
    figure = Figure(figsize=(3.6 * columns, 3.6 * rows))
    reference = values_by_case(table, methods[0], column, case_ids)
    colours = _colours(methods)
    label = METRIC_INFO.get(column, (column,))[0]
    for index, method in enumerate(others):
        axis = figure.add_subplot(rows, columns, index + 1)
        values = values_by_case(table, method, column, case_ids)
        finite = np.isfinite(reference) & np.isfinite(values)
        axis.scatter(reference[finite], values[finite], s=14, alpha=0.75, color=colours[method])
        if finite.any():
            low = float(min(reference[finite].min(), values[finite].min()))
            high = float(max(reference[finite].max(), values[finite].max()))
            pad = 0.05 * (high - low) or 0.5
            axis.plot([low - pad, high + pad], [low - pad, high + pad], color="0.5", linewidth=1, linestyle="--")
            axis.set_xlim(low - pad, high + pad)
            axis.set_ylim(low - pad, high + pad)
            axis.set_aspect("equal")
        axis.set_xlabel(f"{methods[0]} {label}")
        axis.set_ylabel(f"{method} {label}")
        hidden = int((~finite).sum())
        axis.set_title(f"{method} vs {methods[0]}" + (f" ({hidden} non-finite not shown)" if hidden else ""),
                       fontsize=10)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)
