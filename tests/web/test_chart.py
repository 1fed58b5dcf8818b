"""The dashboard chart: a pure function from daily counts to SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from app.web.chart import FONT_SIZE, MIN_DAYS, ChartLabels, axis_ticks, daily_chart

LABELS = ChartLabels(title="Letters per day", signed="Signed", sent="Sent", empty="No letters yet")
SVG = "{http://www.w3.org/2000/svg}"


def bars(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]


@pytest.mark.parametrize(
    ("value", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (2, [0, 1, 2]),
        (3, [0, 1, 2, 3]),
        (5, [0, 1, 2, 3, 4, 5]),
        (7, [0, 2, 4, 6, 8]),
        (11, [0, 5, 10, 15]),
        (250, [0, 50, 100, 150, 200, 250]),
        (1001, [0, 500, 1000, 1500]),
    ],
)
def test_axis_counts_whole_letters(value: int, ticks: list[int]) -> None:
    assert axis_ticks(value) == ticks


def test_axis_labels_are_whole_numbers() -> None:
    """One day with 3 letters and one with 5: no 0.5 or 2.5 of a letter on the axis."""
    svg = daily_chart([(date(2026, 5, 1), 3, 1), (date(2026, 5, 2), 5, 5)], labels=LABELS)
    values = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    numbers = [v for v in values if v and re.fullmatch(r"[\d.]+", v)]
    assert numbers == ["1", "2", "3", "4", "5"]


def test_text_keeps_its_size_on_a_phone() -> None:
    """No viewBox on the outer SVG: it is as wide as the page and its words stay
    FONT_SIZE pixels, where a 720-unit viewBox squeezed into a phone made them 4 px."""
    root = ET.fromstring(daily_chart([(date(2026, 5, 1), 3, 1)], labels=LABELS))
    assert root.get("viewBox") is None
    assert root.get("width") == "100%"
    sizes = {float(t.get("font-size", "0")) for t in root.iter(f"{SVG}text")}
    assert min(sizes) >= FONT_SIZE >= 12
    # Only the bars are stretched, in an inner SVG of their own.
    [inner] = [e for e in root.iter(f"{SVG}svg") if e is not root]
    assert inner.get("preserveAspectRatio") == "none"
    assert list(inner.iter(f"{SVG}text")) == []


def test_bars_scale_to_the_counts() -> None:
    start = date(2026, 5, 1)
    days = [(start + timedelta(days=i), (i * 3) % 11, i % 4) for i in range(MIN_DAYS)]
    days[:3] = [(start, 10, 0), (days[1][0], 5, 10), (days[2][0], 0, 2)]
    svg = daily_chart(days, labels=LABELS, height=240)
    drawn = bars(svg)
    assert len(drawn) == 2 * MIN_DAYS  # signed and sent for each day
    heights = [float(b.get("height", "0")) for b in drawn[:6]]
    # The axis tops at 10 and the plot is 240 - 44 - 24 = 172 pixels high.
    assert heights == [172, 0, 86, 172, 0, 34.4]
    # Every bar stands on the same baseline.
    assert {round(float(b.get("y", "0")) + float(b.get("height", "0")), 1) for b in drawn} == {172}
    titles = [b.find(f"{SVG}title").text for b in drawn]  # type: ignore[union-attr]
    assert titles[:2] == ["2026-05-01: Signed 10", "2026-05-01: Sent 0"]
    assert "2026-05-14" in svg  # the last day is labelled under the axis


def test_a_first_day_is_shown_among_two_weeks() -> None:
    svg = daily_chart([(date(2026, 5, 14), 3, 1)], labels=LABELS)
    drawn = bars(svg)
    assert len(drawn) == 2 * MIN_DAYS
    assert [float(b.get("height", "0")) for b in drawn[:-2]] == [0] * (2 * MIN_DAYS - 2)
    texts = [t.text for t in ET.fromstring(svg).iter(f"{SVG}text")]
    assert "2026-05-01" in texts
    assert "2026-05-14" in texts


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
    svg = daily_chart(days, labels=LABELS)
    [inner] = [e for e in ET.fromstring(svg).iter(f"{SVG}svg") if e.get("viewBox")]
    view_width = float(inner.get("viewBox", "").split()[2])
    xs = [float(b.get("x", "0")) + float(b.get("width", "0")) for b in bars(svg)]
    assert max(xs) <= view_width
    assert len(re.findall('class="bar"', svg)) == 730
