"""The dashboard chart: a pure function from daily counts to SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from app.organisers.chart import ChartLabels, daily_chart, nice_ceiling

LABELS = ChartLabels(title="Letters per day", signed="Signed", sent="Sent", empty="No letters yet")
SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (250, 500), (1000, 1000)]
)
def test_axis_top_is_round(value: int, top: int) -> None:
    assert nice_ceiling(value) == top


def test_bars_scale_to_the_counts() -> None:
    start = date(2026, 5, 1)
    days = [(start, 10, 0), (start + timedelta(days=1), 5, 10), (start + timedelta(days=2), 0, 2)]
    svg = daily_chart(days, labels=LABELS, height=240)
    drawn = bars(svg)
    assert len(drawn) == 6  # signed and sent for each day
    heights = [float(b.get("height", "0")) for b in drawn]
    # The axis tops at 10 and the plot is 240 - 28 - 28 = 184 pixels high.
    assert heights == [184, 0, 92, 184, 0, 36.8]
    # Every bar stands on the same baseline.
    assert {round(float(b.get("y", "0")) + float(b.get("height", "0")), 1) for b in drawn} == {212}
    titles = [b.find(f"{SVG}title").text for b in drawn]  # type: ignore[union-attr]
    assert titles[:2] == ["2026-05-01: Signed 10", "2026-05-01: Sent 0"]
    assert "2026-05-03" in svg  # the last day is labelled under the axis


def test_pure_and_deterministic() -> None:
    days = [(date(2026, 5, 1), 3, 1)]
    assert daily_chart(days, labels=LABELS) == daily_chart(days, labels=LABELS)


def test_no_days_says_so() -> None:
    svg = daily_chart([], labels=LABELS)
    ET.fromstring(svg)
    assert bars(svg) == []
    assert "No letters yet" in svg


def test_text_is_escaped() -> None:
    hostile = ChartLabels(
        title='<script>alert("x")</script>', signed="A & B", sent="<b>", empty="x"
    )
    svg = daily_chart([(date(2026, 5, 1), 1, 1)], labels=hostile)
    ET.fromstring(svg)  # still well-formed XML
    assert "<script>" not in svg
    assert "<b>" not in svg
    assert "A &amp; B" in svg


def test_many_days_stay_inside_the_width() -> None:
    start = date(2026, 1, 1)
    days = [(start + timedelta(days=i), i % 7, i % 5) for i in range(365)]
    svg = daily_chart(days, labels=LABELS, width=720)
    xs = [float(b.get("x", "0")) + float(b.get("width", "0")) for b in bars(svg)]
    assert max(xs) <= 720
    assert len(re.findall('class="bar"', svg)) == 730
