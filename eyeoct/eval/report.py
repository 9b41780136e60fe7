"""The comparison report as one self-contained HTML file: every image is embedded (base64 PNG) and also
linked as a file beside it by a relative path, so the folder can be moved; every cell is escaped."""
from __future__ import annotations

import base64
import html
import math
from urllib.parse import quote
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from eyeoct.eval.tables import METRIC_INFO

STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:1600px}table{border-collapse:collapse;margin:.5em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}th{background:#eee}"
         "td.name,th.name{text-align:left}small{color:#555}figure{margin:1em 0}"
         "img.plot{max-width:100%}img.row{image-rendering:pixelated;max-width:none}"
         ".scroll{overflow-x:auto}figcaption{color:#333;margin:.3em 0}")


@dataclass
class Picture:
    """A PNG shown in the report: `path` relative to the report's folder, where the same bytes are written."""

    title: str
    path: str
    png: bytes
    caption: str = ""
    css_class: str = "plot"


@dataclass
class ReportContent:
    """Everything the report shows (tables as produced by eyeoct.eval.tables)."""

    title: str
    setup: list[tuple[str, str]]  # (label, text) lines of the set-up paragraph
    methods: list[str]
    metrics: pd.DataFrame
    differences: pd.DataFrame
    set_metrics: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    plots: list[Picture] = field(default_factory=list)
    examples: list[Picture] = field(default_factory=list)
    examples_note: str = ""
    files: list[tuple[str, str]] = field(default_factory=list)  # (relative path, description)
    protocol: dict[str, str] = field(default_factory=dict)
    per_case: pd.DataFrame | None = None
    appendix: list[Picture] = field(default_factory=list)  # pictures already on disk (path relative to the report)


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def number(value, digits: int = 4) -> str:
    """A float as text: fixed digits, 'inf'/'nan' spelled out."""
    value = float(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def signed(value, digits: int = 4) -> str:
    """A float with its sign (+0.0123), 'inf'/'nan' spelled out."""
    value = float(value)
    return f"{value:+.{digits}f}" if math.isfinite(value) else str(value)


def _p_value(p) -> str:
    p = float(p)
    if not math.isfinite(p):
        return "nan"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}"


def _results_table(content: ReportContent) -> str:
    columns = list(dict.fromkeys(content.metrics["metric"]))
    head = "".join(f"<th>{esc(_heading(c))}</th>" for c in columns)
    rows = []
    indexed = content.metrics.set_index(["method", "metric"])
    for method in content.methods:
        cells = []
        for column in columns:
            r = indexed.loc[(method, column)]
            dropped = int(r["n_total"] - r["n"])
            note = f"<br><small>{dropped} non-finite left out</small>" if dropped else ""
            cells.append(f"<td>{number(r['mean'])}<br><small>[{number(r['ci_low'])}, {number(r['ci_high'])}]"
                         f"</small>{note}</td>")
        rows.append(f"<tr><td class='name'>{esc(method)}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th class='name'>method</th>{head}</tr>{''.join(rows)}</table>")


def _heading(column: str) -> str:
    label, better = METRIC_INFO.get(column, (column, None))
    return label + {True: " \u2191", False: " \u2193"}.get(better, "")


def _differences_table(content: ReportContent) -> str:
    if content.differences.empty:
        return ""
    columns = list(dict.fromkeys(content.differences["metric"]))
    reference = content.methods[0]
    indexed = content.differences.set_index(["method", "metric"])
    rows = []
    for method in content.methods[1:]:
        cells = []
        for column in columns:
            r = indexed.loc[(method, column)]
            cells.append(f"<td>{signed(r['mean'])}<br><small>[{signed(r['ci_low'])}, {signed(r['ci_high'])}]<br>"
                         f"{_p_value(r['p_wilcoxon'])}"
                         f", n = {int(r['n'])}</small></td>")
        rows.append(f"<tr><td class='name'>{esc(method)} \u2212 {esc(reference)}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{esc(_heading(c))}</th>" for c in columns)
    return (f"<h2>Paired differences to {esc(reference)}</h2><p>Per case, method minus {esc(reference)}: mean, "
            f"its bootstrap interval (the same case resamples for both methods) and the two-sided Wilcoxon "
            f"signed-rank p of the per-case differences.</p>"
            f"<table><tr><th class='name'>difference</th>{head}</tr>{''.join(rows)}</table>")


def _set_metrics_table(content: ReportContent) -> str:
    if content.set_metrics.empty:
        return ""
    rows = "".join(f"<tr><td class='name'>{esc(r['method'])}</td><td class='name'>{esc(r['label'])}</td>"
                   f"<td>{number(r['value'])}</td><td>{int(r['n_real'])}</td><td>{int(r['n_fake'])}</td>"
                   f"<td class='name'><small>{esc(r['weights_sha256'])}</small></td></tr>"
                   for r in content.set_metrics.to_dict("records"))
    return ("<h2>Set metrics</h2><p>Distances between the feature distributions of all predictions and all ground "
            "truth (no per-case values, hence no intervals); lower is better.</p><table><tr><th class='name'>method"
            "</th><th class='name'>metric</th><th>value</th><th>N real</th><th>N generated</th>"
            f"<th class='name'>weights SHA-256</th></tr>{rows}</table>")


def href(base: str, path: str) -> str:
    """A relative link, percent-encoded and escaped for an attribute."""
    return esc(quote(base + path))


def _picture(picture: Picture, base: str) -> str:
    data = base64.b64encode(picture.png).decode("ascii")
    caption = f"<figcaption>{esc(picture.caption)}</figcaption>" if picture.caption else ""
    return (f"<figure><figcaption><b>{esc(picture.title)}</b> <small>(<a href='{href(base, picture.path)}'>"
            f"{esc(picture.path)}</a>)</small></figcaption>{caption}<div class='scroll'>"
            f"<img class='{esc(picture.css_class)}' alt='{esc(picture.title)}' src='data:image/png;base64,{data}'>"
            f"</div></figure>")


def _per_case_table(table: pd.DataFrame) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{number(v) if isinstance(v, float) else esc(v)}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    return (f"<details><summary>Per-case values ({len(table)} rows)</summary><div class='scroll'><table>"
            f"<tr>{head}</tr>{body}</table></div></details>")


def render_html(content: ReportContent, base: str = "") -> str:
    """The report's HTML text; `base` is prepended to every relative link (the report's folder as seen from
    where this HTML is written, e.g. "eval/")."""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(content.title)}</title>"
             f"<style>{STYLE}</style></head><body><h1>{esc(content.title)}</h1><p>"]
    parts.append("<br>".join(f"<b>{esc(label)}:</b> {esc(text)}" for label, text in content.setup) + "</p>")
    parts += [f"<p><small>{esc(note)}</small></p>" for note in content.notes]
    parts.append("<h2>Results</h2><p>Mean over cases and its bootstrap interval.</p>" + _results_table(content))
    parts.append(_differences_table(content))
    parts.append(_set_metrics_table(content))
    if content.plots:
        parts.append("<h2>Plots</h2>" + "".join(_picture(p, base) for p in content.plots))
    if content.examples or content.examples_note:
        parts.append(f"<h2>Example eyes</h2><p>{esc(content.examples_note)}</p>")
        parts += [_picture(p, base) for p in content.examples]
    parts += [f"<h2>{esc(p.title)}</h2>" + _picture(p, base) for p in content.appendix]
    if content.per_case is not None:
        parts.append("<h2>Per case</h2>" + _per_case_table(content.per_case))
    if content.files:
        links = "".join(f"<li><a href='{href(base, path)}'>{esc(path)}</a>: {esc(text)}</li>"
                        for path, text in content.files)
        parts.append(f"<h2>Files</h2><ul>{links}</ul>")
    if content.protocol:
        parts.append("<h2>Protocol</h2><ul>" + "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>"
                                                       for k, v in content.protocol.items()) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: Path, content: ReportContent, name: str = "report.html") -> Path:
    """Write every picture's PNG at its relative path under `out_dir`, then the HTML; returns the HTML's path."""
    for picture in (*content.plots, *content.examples):
        target = out_dir / picture.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(picture.png)
    path = out_dir / name
    path.write_text(render_html(content), encoding="utf-8")
    return path
