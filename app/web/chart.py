"""The dashboard's chart of letters signed and sent per day: SVG, a pure function.

Rendered on the server so the dashboard needs no JavaScript and no CDN; every piece of
text is escaped here, because the result is put into the page as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

SIGNED_COLOUR = "#a1161d"
SENT_COLOUR = "#1b1b1b"
GRID_COLOUR = "#c9c4bc"


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """The words on the chart, in the page's language."""

    title: str
    signed: str
    sent: str
    empty: str


# The chart is always at least two weeks wide, so the bars of a campaign's first day are
# bars, not a wall of colour across the page.
MIN_DAYS = 14
# Text is set in CSS pixels: the outer SVG has no viewBox, so it stretches to the page's
# width without shrinking its words (scaled to a phone, 11-unit labels were 4 px tall).
FONT_SIZE = 13
LEGEND_Y, TOP, BOTTOM = 16, 44, 24
HALO = 'stroke="#ffffff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'


def axis_ticks(value: int) -> list[int]:
    """The y-axis values for counts up to `value`: whole numbers (there is no half a
    letter) from 0 to a round top at least `value`, in at most five equal steps of
    1, 2 or 5 times a power of ten."""
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power):
            if 5 * step >= value:
                top = max(step, -(-value // step) * step)
                return list(range(0, top + 1, step))
        power *= 10


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _legend_width(text: str) -> int:
    """Roughly how wide a legend entry is, to place the next one after it."""
    return 18 + round(len(text) * FONT_SIZE * 0.62) + 24


def daily_chart(
    days: Sequence[tuple[date, int, int]],
    *,
    labels: ChartLabels,
    height: int = 240,
) -> str:
    """An SVG bar chart as wide as its container: for each (day, signed, sent), a bar of
    letters signed and, beside it, a bar of letters sent, each with a <title> naming the
    day and count. Fewer than MIN_DAYS days are preceded by empty ones.

    The bars sit in an inner SVG stretched across the width (preserveAspectRatio none,
    one user unit a pixel upright); every word is in the outer SVG at FONT_SIZE pixels,
    the axis values above their grid lines on a white halo so a bar never hides them."""
    title = escape(labels.title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'width="100%" height="{height}" aria-label="{title}">',
        f"<title>{title}</title>",
    ]
    signed_x = 18 + _legend_width(labels.signed)
    parts.append(
        f'<rect x="0" y="{LEGEND_Y - 12}" width="12" height="12" fill="{SIGNED_COLOUR}"/>'
        f'<text x="18" y="{LEGEND_Y - 1}" font-size="{FONT_SIZE}">{escape(labels.signed)}</text>'
        f'<rect x="{signed_x - 18}" y="{LEGEND_Y - 12}" width="12" height="12" '
        f'fill="{SENT_COLOUR}"/>'
        f'<text x="{signed_x}" y="{LEGEND_Y - 1}" font-size="{FONT_SIZE}">'
        f"{escape(labels.sent)}</text>"
    )
    plot_h = height - TOP - BOTTOM
    if not days:
        parts.append(
            f'<text x="50%" y="{TOP + plot_h // 2}" font-size="{FONT_SIZE + 2}" '
            f'text-anchor="middle">{escape(labels.empty)}</text></svg>'
        )
        return "".join(parts)

    if len(days) < MIN_DAYS:
        first = days[0][0]
        missing = MIN_DAYS - len(days)
        days = [(first - timedelta(days=missing - i), 0, 0) for i in range(missing)] + list(days)
    ticks = axis_ticks(max(max(signed, sent) for _, signed, sent in days))
    top_value = ticks[-1]
    for value in ticks:
        y = _fmt(TOP + plot_h * (1 - value / top_value))
        parts.append(
            f'<line x1="0" x2="100%" y1="{y}" y2="{y}" stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
    # Ten units a day across: two bars of four and a gap of two.
    parts.append(
        f'<svg x="0" y="{TOP}" width="100%" height="{plot_h}" '
        f'viewBox="0 0 {10 * len(days)} {plot_h}" preserveAspectRatio="none">'
    )
    for i, (day, signed, sent) in enumerate(days):
        for offset, count, colour, name in (
            (1, signed, SIGNED_COLOUR, labels.signed),
            (5, sent, SENT_COLOUR, labels.sent),
        ):
            h = plot_h * count / top_value
            parts.append(
                f'<rect class="bar" x="{10 * i + offset}" y="{_fmt(plot_h - h)}" '
                f'width="4" height="{_fmt(h)}" fill="{colour}">'
                f"<title>{day.isoformat()}: {escape(name)} {count}</title></rect>"
            )
    parts.append("</svg>")
    for value in ticks[1:]:
        y = _fmt(TOP + plot_h * (1 - value / top_value) - 4)
        parts.append(f'<text x="0" y="{y}" font-size="{FONT_SIZE}" {HALO}>{value}</text>')
    # The first and last day under the axis.
    baseline = height - 6
    parts.append(
        f'<text x="0" y="{baseline}" font-size="{FONT_SIZE}">{days[0][0].isoformat()}</text>'
        f'<text x="100%" y="{baseline}" font-size="{FONT_SIZE}" text-anchor="end">'
        f"{days[-1][0].isoformat()}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
