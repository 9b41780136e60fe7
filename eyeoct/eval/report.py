"""Self-contained HTML report: summary, per-case table, image grids (PNG embedded as base64)."""
from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

TILE_WIDTH = 192


def volume_grid_png(pred: np.ndarray, gt: np.ndarray, tile_width: int = TILE_WIDTH) -> bytes:
    """PNG of rows ground truth / prediction / |difference|, one column per slice, tiles downscaled."""
    diff = np.abs(pred.astype(np.int16) - gt.astype(np.int16)).astype(np.uint8)
    h, w = gt.shape[-2:]
    scale = min(1.0, tile_width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    tiles = [[np.asarray(Image.fromarray(s).resize(size, Image.Resampling.BILINEAR)) for s in vol]
             for vol in (gt, pred, diff)]
    gap = 2  # white lines between tiles
    canvas = np.full((3 * (size[1] + gap), len(gt) * (size[0] + gap)), 255, np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            y, x = r * (size[1] + gap), c * (size[0] + gap)
            canvas[y:y + size[1], x:x + size[0]] = tile
    grid = Image.fromarray(canvas)
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def pick_examples(table: pd.DataFrame, column: str = "ssim") -> dict[str, str]:
    """Case ids of the best, median and worst case by `column` (higher is better)."""
    ordered = table.sort_values([column, "case"], ascending=[False, True])["case"].tolist()
    return {"best": ordered[0], "median": ordered[len(ordered) // 2], "worst": ordered[-1]}


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if np.isfinite(value) else str(value)
    return html.escape(str(value))


def write_html_report(path: Path, table: pd.DataFrame, summary: dict,
                      load_pair: Callable[[str], tuple[np.ndarray, np.ndarray]]) -> None:
    """Write the report; image grids of best/median/worst by SSIM when SSIM was computed."""
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>EyeOCT evaluation</title>",
             "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
             "img{image-rendering:pixelated;max-width:100%}</style></head><body>",
             f"<h1>EyeOCT evaluation</h1><p>Prediction: {html.escape(str(summary['pred']))}<br>"
             f"Ground truth: {html.escape(str(summary['gt']))}<br>N = {summary['n_cases']} cases, "
             f"data_range = {summary['data_range']:g}. {html.escape(summary['resize_rule'])}.</p>",
             "<h2>Summary</h2><table><tr><th>metric</th><th>mean</th><th>median</th><th>std (finite)</th>"
             "<th>min</th><th>max</th></tr>"]
    for name, stats in summary.items():
        if isinstance(stats, dict) and "mean" in stats:
            parts.append(f"<tr><td>{name}</td>" + "".join(f"<td>{_format(stats[k])}</td>"
                                                          for k in ("mean", "median", "std", "min", "max")) + "</tr>")
    parts.append("</table>")
    for key in ("fvd", "fid_kid"):
        if key in summary:
            parts.append(f"<h3>{key.upper()}</h3><pre>{html.escape(json.dumps(summary[key], indent=1))}</pre>")
    if "ssim" in table.columns:
        parts.append("<h2>Examples by SSIM</h2><p>Rows: ground truth, prediction, |difference|; columns: slices 0-5.</p>")
        for label, case_id in pick_examples(table).items():
            pred, gt = load_pair(case_id)
            ssim = float(table.loc[table["case"] == case_id, "ssim"].iloc[0])
            png = base64.b64encode(volume_grid_png(pred, gt)).decode("ascii")
            parts.append(f"<h3>{label}: {html.escape(case_id)} (SSIM {ssim:.4f})</h3>"
                         f"<img alt='{label}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Per case</h2><table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in table.columns) + "</tr>")
    for record in table.to_dict("records"):
        parts.append("<tr>" + "".join(f"<td>{_format(v)}</td>" for v in record.values()) + "</tr>")
    parts.append("</table></body></html>")
    Path(path).write_text("\n".join(parts), encoding="utf-8")
