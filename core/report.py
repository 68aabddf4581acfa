"""The HTML batch report of a scored batch (``lsfa score --report OUT.html`` and the GUI's
*File ▸ Export report…*): one self-contained file (overlays are embedded PNG data URIs, the
score histogram an inline SVG) with the model and thresholds, summary counts, a confusion table
when ground-truth labels are known, and one row per sample. Print CSS keeps rows whole on paper.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


__all__ = ["ReportRow", "ReportHeader", "render_report", "write_report", "histogram_svg", "counts", "confusion_table",
           "VERDICTS", "utc_now"]

VERDICTS = ("OK", "UNCERTAIN", "NG", "SKIPPED")
THUMB_PX = 240  # display width of the embedded overlays (full resolution inside: zoom in to read them)


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second (e.g. 2026-11-30T09:15:02Z)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ReportRow:
    """One sample of the report. Scores and thresholds are raw model units; ``is_defect`` is the
    ground truth (None: unknown); ``png`` its (annotated) overlay, PNG-encoded (None: none), kept
    encoded so a large batch does not hold its images in memory."""

    name: str
    verdict: str
    image_score: float | None = None
    is_defect: bool | None = None
    label: str | None = None
    regions: int | None = None
    largest_region: str = ""  # e.g. "3.2 mm²" or "41 px"
    source: str = ""
    error: str = ""
    png: bytes | None = None


@dataclass
class ReportHeader:
    """What the batch was scored with (raw score units)."""

    title: str = "LSFA Inspector report"
    model: str = ""
    model_id: str = ""
    image_threshold: float | None = None
    pixel_threshold: float | None = None
    uncertain_until: float | None = None
    min_defect_area: int = 0
    date: str = field(default_factory=utc_now)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def counts(rows: list[ReportRow]) -> dict[str, int]:
    """Number of samples per verdict (every one of VERDICTS present)."""
    out = dict.fromkeys(VERDICTS, 0)
    for r in rows:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


def confusion_table(rows: list[ReportRow]) -> dict[str, dict[str, int]] | None:
    """{"good"|"defective": {verdict: count}} over scored samples with a known label; None if none."""
    known = [r for r in rows if r.is_defect is not None and r.verdict != "SKIPPED"]
    if not known:
        return None
    table = {truth: dict.fromkeys(VERDICTS[:3], 0) for truth in ("good", "defective")}
    for r in known:
        table["defective" if r.is_defect else "good"][r.verdict] += 1
    return table


def histogram_svg(rows: list[ReportRow], header: ReportHeader, bins: int = 30, width: int = 640,
                  height: int = 200) -> str:
    """Inline SVG histogram of the image scores (good / defective / unlabelled stacked) with the
    image threshold (and the uncertain band's upper end) as vertical lines."""
    scored = [r for r in rows if r.image_score is not None and np.isfinite(r.image_score)]
    if not scored:
        return "<p>No scores.</p>"
    values = np.array([r.image_score for r in scored])
    marks = [v for v in (header.image_threshold, header.uncertain_until) if v is not None]
    lo, hi = float(min([values.min(), *marks])), float(max([values.max(), *marks]))
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    groups = {"good": "#43a047", "defective": "#e53935", "unlabelled": "#90a4ae"}
    member = {"good": [r.is_defect is False for r in scored], "defective": [r.is_defect is True for r in scored],
              "unlabelled": [r.is_defect is None for r in scored]}
    hists = {g: np.histogram(values[np.array(m, bool)], edges)[0] for g, m in member.items()}
    top = max(1, int(sum(hists.values()).max()))
    pad_l, pad_b = 36, 42  # the x labels and, under them, the legend
    plot_w, plot_h = width - pad_l - 8, height - pad_b - 8
    bar_w = plot_w / bins
    parts = [f'<svg class="histogram" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="image score histogram">']
    base = np.zeros(bins)
    for g, colour in groups.items():
        for b in range(bins):
            n = hists[g][b]
            if n:
                y0 = plot_h * (1 - (base[b] + n) / top) + 8
                parts.append(f'<rect x="{pad_l + b * bar_w:.1f}" y="{y0:.1f}" width="{bar_w - 1:.1f}" '
                             f'height="{plot_h * n / top:.1f}" fill="{colour}"><title>{g}: {n}</title></rect>')
        base += hists[g]
    x_of = lambda v: pad_l + (v - lo) / (hi - lo) * plot_w  # noqa: E731
    for value, dash in ((header.image_threshold, ""), (header.uncertain_until, ' stroke-dasharray="4 3"')):
        if value is not None:
            parts.append(f'<line x1="{x_of(value):.1f}" x2="{x_of(value):.1f}" y1="4" y2="{plot_h + 8}" '
                         f'stroke="#000" stroke-width="1.5"{dash}/>')
    axis_y = plot_h + 8
    parts.append(f'<line x1="{pad_l}" x2="{pad_l + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#555"/>')
    for v in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{x_of(v):.1f}" y="{axis_y + 15}" font-size="11" text-anchor="middle">{v:.4g}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="14" font-size="11" text-anchor="end">{top}</text>')
    legend_x, legend_y = pad_l, height - 14
    for g, colour in groups.items():
        if hists[g].any():
            parts.append(f'<rect x="{legend_x}" y="{legend_y}" width="10" height="10" fill="{colour}"/>'
                         f'<text x="{legend_x + 14}" y="{legend_y + 9}" font-size="11">{g}</text>')
            legend_x += 90
    parts.append(f'<text x="{legend_x}" y="{legend_y + 9}" font-size="11">| image threshold'
                 + (", - - uncertain until" if header.uncertain_until is not None else "") + "</text>")
    parts.append("</svg>")
    return "".join(parts)


def _data_uri(png: bytes | None) -> str:
    return "" if png is None else "data:image/png;base64," + base64.b64encode(png).decode()


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { font-weight: bold; }
.OK { color: #2e7d32; } .NG { color: #b71c1c; } .UNCERTAIN { color: #e65100; } .SKIPPED { color: #616161; }
img.thumb { width: %dpx; image-rendering: auto; }
.meta td:first-child { color: #555; }
@media print {
  body { margin: 0; font-size: 10pt; }
  tr { page-break-inside: avoid; break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
""" % THUMB_PX


def render_report(rows: list[ReportRow], header: ReportHeader) -> str:
    """The report as one HTML document (str)."""
    e = html.escape
    c = counts(rows)
    scored = sum(c[v] for v in VERDICTS[:3])
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(header.title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{e(header.title)}</h1>",
           '<table class="meta">',
           f"<tr><td>date (UTC)</td><td>{e(header.date)}</td></tr>",
           f"<tr><td>model</td><td>{e(header.model)}</td></tr>",
           f'<tr><td>model id</td><td id="model-id">{e(header.model_id)}</td></tr>',
           f"<tr><td>image threshold</td><td>{_fmt(header.image_threshold)}</td></tr>",
           f"<tr><td>pixel threshold</td><td>{_fmt(header.pixel_threshold)}</td></tr>"]
    if header.uncertain_until is not None:
        out.append(f"<tr><td>uncertain until</td><td>{_fmt(header.uncertain_until)}</td></tr>")
    if header.min_defect_area:
        out.append(f"<tr><td>minimum defect area</td><td>{header.min_defect_area} px</td></tr>")
    out.append("</table>")
    out.append("<h2>Summary</h2><table class=\"summary\"><tr><th>samples</th><th>scored</th>"
               + "".join(f"<th>{v}</th>" for v in VERDICTS) + "<th>yield (OK / scored)</th></tr>")
    yield_ = f"{100 * c['OK'] / scored:.1f} %" if scored else "–"
    out.append(f'<tr><td class="num" id="count-samples">{len(rows)}</td><td class="num" id="count-scored">{scored}</td>'
               + "".join(f'<td class="num" id="count-{v}">{c[v]}</td>' for v in VERDICTS)
               + f'<td class="num">{yield_}</td></tr></table>')
    table = confusion_table(rows)
    if table is not None:
        out.append('<h2>Against the ground truth</h2><table class="confusion"><tr><th>truth \\ verdict</th>'
                   + "".join(f"<th>{v}</th>" for v in VERDICTS[:3]) + "</tr>")
        for truth, row in table.items():
            out.append(f"<tr><th>{truth}</th>" + "".join(
                f'<td class="num" id="confusion-{truth}-{v}">{row[v]}</td>' for v in VERDICTS[:3]) + "</tr>")
        out.append("</table>")
    out.append("<h2>Image scores</h2>" + histogram_svg(rows, header))
    out.append('<h2>Samples</h2><table class="samples"><thead><tr><th>#</th><th>overlay</th><th>name</th>'
               "<th>verdict</th><th>score</th><th>ground truth</th><th>regions</th><th>largest region</th>"
               "<th>note</th></tr></thead><tbody>")
    for i, r in enumerate(rows, 1):
        uri = _data_uri(r.png)
        img = f'<img class="thumb" alt="{e(r.name)}" src="{uri}">' if uri else ""
        truth = "–" if r.is_defect is None else (e(r.label or "") or ("defective" if r.is_defect else "good"))
        out.append(
            f'<tr class="sample"><td class="num">{i}</td><td>{img}</td><td title="{e(r.source)}">{e(r.name)}</td>'
            f'<td class="verdict {e(r.verdict)}">{e(r.verdict)}</td><td class="num">{_fmt(r.image_score)}</td>'
            f"<td>{truth}</td><td class=\"num\">{'' if r.regions is None else r.regions}</td>"
            f'<td class="num">{e(r.largest_region)}</td><td>{e(r.error)}</td></tr>')
    out.append("</tbody></table></body></html>")
    return "\n".join(out)


def write_report(path: str | Path, rows: list[ReportRow], header: ReportHeader) -> Path:
    """Write the report atomically (core.outputs: one clear error if the location is not writable)."""
    from core.outputs import write_output

    path = Path(path)
    write_output(path, render_report(rows, header).encode(), "HTML report")
    return path
