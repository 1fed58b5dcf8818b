"""The dashboard's chart of letters signed and sent per day: SVG, a pure function.

Rendered on the server so the dashboard needs no JavaScript and no CDN; every piece of
text is escaped here, because the result is put into the page as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
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


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 × 10^k that is at least `value` (at least 1): a round top
    for the axis."""
    if value <= 1:
        return 1
    power: int = 10 ** len(str(value - 1)) // 10  # 10^k with 10^k <= value - 1 < 10^(k+1)
    for step in (1, 2, 5):
        if step * power >= value:
            return step * power
    return 10 * power


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def daily_chart(
    days: Sequence[tuple[date, int, int]],
    *,
    labels: ChartLabels,
    width: int = 720,
    height: int = 240,
) -> str:
    """An SVG bar chart: for each (day, signed, sent), a bar of letters signed and, beside
    it, a bar of letters sent. Each bar carries a <title> with the day and count."""
    left, right, top, bottom = 48, 8, 28, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    title = escape(labels.title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{title}">',
        f"<title>{title}</title>",
    ]
    # Legend.
    parts.append(
        f'<rect x="{left}" y="6" width="12" height="12" fill="{SIGNED_COLOUR}"/>'
        f'<text x="{left + 16}" y="16" font-size="12">{escape(labels.signed)}</text>'
        f'<rect x="{left + 140}" y="6" width="12" height="12" fill="{SENT_COLOUR}"/>'
        f'<text x="{left + 156}" y="16" font-size="12">{escape(labels.sent)}</text>'
    )
    if not days:
        parts.append(
            f'<text x="{width / 2:.0f}" y="{top + plot_h / 2:.0f}" font-size="14" '
            f'text-anchor="middle">{escape(labels.empty)}</text></svg>'
        )
        return "".join(parts)

    top_value = nice_ceiling(max(max(signed, sent) for _, signed, sent in days))
    # Grid lines and their values at 0, half and the top.
    for fraction in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - fraction)
        value = top_value * fraction
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{_fmt(y + 4)}" font-size="11" text-anchor="end">'
            f"{value:g}</text>"
        )
    slot = plot_w / len(days)
    bar = min(max(slot * 0.4, 0.5), 24.0)
    for i, (day, signed, sent) in enumerate(days):
        x = left + i * slot + slot * 0.1
        for offset, count, colour, name in (
            (0.0, signed, SIGNED_COLOUR, labels.signed),
            (bar, sent, SENT_COLOUR, labels.sent),
        ):
            h = plot_h * count / top_value
            parts.append(
                f'<rect class="bar" x="{_fmt(x + offset)}" y="{_fmt(top + plot_h - h)}" '
                f'width="{_fmt(bar)}" height="{_fmt(h)}" fill="{colour}">'
                f"<title>{day.isoformat()}: {escape(name)} {count}</title></rect>"
            )
    # The first and last day under the axis.
    baseline = top + plot_h + 16
    parts.append(f'<text x="{left}" y="{baseline}" font-size="11">{days[0][0].isoformat()}</text>')
    if len(days) > 1:
        parts.append(
            f'<text x="{width - right}" y="{baseline}" font-size="11" text-anchor="end">'
            f"{days[-1][0].isoformat()}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
