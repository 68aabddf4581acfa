"""Issue 16 item 5: report-grade export: the dated, traceable score CSV, annotated overlays
(core.render.annotate) and the HTML batch report (core.report, lsfa score --report)."""

import csv
import re
from datetime import datetime, timezone

import numpy as np
import pytest

from core import render
from core.cli import main
from core.model_io import load_model
from core.regions import find_regions
from core.report import ReportHeader, ReportRow, confusion_table, counts, render_report
from core.results import Thresholds
from lsfa_gui._testing import synthetic_result


def significant_digits(text: str) -> int:
    mantissa = re.sub(r"e[-+]\d+$", "", text.lstrip("-")).replace(".", "").lstrip("0")
    return len(mantissa)


def test_score_csv_and_report_agree(tiny_xyz_flagging_model, tmp_path):
    root, model_path = tiny_xyz_flagging_model
    out, report = tmp_path / "s.csv", tmp_path / "r.html"
    assert main(["score", str(model_path), str(root / "cookie" / "test"), "--csv", str(out),
                 "--report", str(report), "--maps", str(tmp_path / "maps"), "--annotate"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[0] == "date"
    for r in rows:
        when = datetime.fromisoformat(r["date"].replace("Z", "+00:00"))
        assert r["date"].endswith("Z") and abs((datetime.now(timezone.utc) - when).total_seconds()) < 600
        assert r["model_id"] == load_model(model_path).model_id
        for key in ("image_score", "image_threshold", "pixel_threshold", "largest_region_mm2"):
            assert r[key] and significant_digits(r[key]) <= 4, (key, r[key])
    doc = report.read_text()
    assert doc.count('<tr class="sample">') == len(rows) == 2
    assert doc.count("data:image/png;base64,") == len(rows) and "<svg" in doc and "@media print" in doc
    number = lambda key: int(re.search(rf'id="{key}">(\d+)<', doc).group(1))  # noqa: E731
    for verdict in ("OK", "NG", "UNCERTAIN", "SKIPPED"):
        assert number(f"count-{verdict}") == sum(r["verdict"] == verdict for r in rows)
    assert number("count-samples") == len(rows)
    truth = {r["name"]: r["name"].startswith("dent") for r in rows}  # the demo's test split: good/ and dent/
    for r in rows:
        kind = "defective" if truth[r["name"]] else "good"
        assert number(f"confusion-{kind}-{r['verdict']}") >= 1
    assert re.search(r'id="model-id">([0-9a-f]+)<', doc).group(1) == rows[0]["model_id"]
    pngs = sorted((tmp_path / "maps").glob("*.png"))
    assert len(pngs) == 2
    from PIL import Image

    assert Image.open(pngs[0]).size[0] >= render.ANNOTATED_MIN_WIDTH  # the annotated version


def test_annotated_overlay_has_header_colour_bar_and_region_boxes():
    result = synthetic_result(1, "crack", size=96)
    thr = Thresholds(0.6, 0.5)
    overlay = render.render_result(result, (0.1, 1.1), thr.pixel, gt_mask=result.mask)
    regions = find_regions(result.anomaly_map, thr.pixel, result.xyz)
    out = render.annotate(overlay, result.name, "NG", result.image_score, thr, (0.1, 1.1), regions=regions)
    k = -(-render.ANNOTATED_MIN_WIDTH // 96)
    assert out.shape[1] > 96 * k and out.shape[0] > 96 * k
    header = out.shape[0] - render._MARGIN - 96 * k
    body = out[header:header + 96 * k, :96 * k]
    # the overlay, scaled up by k, is under the header (away from the region boxes)
    assert np.array_equal(body[::k, ::k][:10, :10], overlay[:10, :10])
    top = out[:header]
    assert np.any(np.all(top == render.VERDICT_RGB["NG"], axis=-1))  # the verdict in its colour
    bar_x = 96 * k + render._BAR_GAP + render._BAR_WIDTH // 2
    h = 96 * k
    index_at = lambda row: round((h - 1 - row) * 255 / (h - 1))  # noqa: E731
    assert out[header + 1, bar_x].tolist() == render.TURBO_LUT[index_at(1)].tolist()  # high end at the top
    assert out[header + h - 2, bar_x].tolist() == render.TURBO_LUT[index_at(h - 2)].tolist()
    assert index_at(1) > 250 and index_at(h - 2) < 5
    box = regions[0].bbox
    mid = (box[1] + box[3]) // 2 * k  # the top edge right of its number label
    assert np.all(body[box[0] * k - 2, mid: box[3] * k] == render.REGION_BOX_RGB)


def test_report_counts_confusion_and_escaping():
    rows = [ReportRow("a", "OK", 0.1, False, "good"), ReportRow("b", "NG", 2.0, True, "crack"),
            ReportRow("c", "NG", 1.5, False, "good"), ReportRow("<d>", "SKIPPED", error="missing xyz"),
            ReportRow("e", "UNCERTAIN", 0.9, None)]
    assert counts(rows) == {"OK": 1, "UNCERTAIN": 1, "NG": 2, "SKIPPED": 1}
    assert confusion_table(rows) == {"good": {"OK": 1, "UNCERTAIN": 0, "NG": 1},
                                     "defective": {"OK": 0, "UNCERTAIN": 0, "NG": 1}}
    doc = render_report(rows, ReportHeader(model="m.lsfa", model_id="abc", image_threshold=0.8, uncertain_until=1.0))
    assert doc.count('<tr class="sample">') == 5 and "&lt;d&gt;" in doc and "<d>" not in doc
    assert 'id="count-scored">4<' in doc and "75.0 %" not in doc and "25.0 %" in doc  # yield = 1 OK / 4 scored
    assert confusion_table(rows[3:4]) is None
    assert "Against the ground truth" not in render_report(rows[3:], ReportHeader())


def test_report_location_is_checked_before_scoring(tiny_xyz_model, tmp_path, capsys):
    root, model_path = tiny_xyz_model
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["score", str(model_path), str(root / "cookie" / "test"), "--report", str(blocker / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "HTML report" in err or "not a folder" in err
    assert "[Scoring" not in err
