"""Inline SVG charts for the digest: no scripts, no fonts or images to fetch.

The SVG is plain XML with presentation attributes (no CSS), so it renders the same
in a browser and in mail clients that show inline SVG, and parses as XML.
"""

from __future__ import annotations

from html import escape

OUTREACH_COLOUR = "#3b6fb6"
REPLIES_COLOUR = "#e08a2c"


def outreach_vs_replies(weeks: list[tuple[str, int, int]], *, width: int = 560, height: int = 220) -> str:
    """Grouped bars of outreach sent and replies received, one group per week label."""
    left, right, top, bottom = 34, 10, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1] + [max(o, r) for _, o, r in weeks])
    step = _nice_step(peak)
    ceiling = step * -(-peak // step)
    group = plot_w / max(1, len(weeks))
    bar = max(2.0, group * 0.34)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Outreach sent and replies received per week">',
        "<title>Outreach sent and replies received per week</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    # Horizontal grid lines with their values.
    for value in range(0, ceiling + 1, step):
        y = top + plot_h - plot_h * value / ceiling
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e3e3" stroke-width="1"/>')
        parts.append(_text(left - 6, y + 4, str(value), anchor="end"))
    for i, (label, outreach, replies) in enumerate(weeks):
        x0 = left + i * group + (group - 2 * bar) / 2
        for j, (value, colour, name) in enumerate(((outreach, OUTREACH_COLOUR, "sent"), (replies, REPLIES_COLOUR, "replies"))):
            h = plot_h * value / ceiling
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(label)}: {value} {name}</title></rect>'
            )
        short = label.split("-")[-1]  # "W48": the year is in the heading
        parts.append(_text(left + i * group + group / 2, height - bottom + 16, short, anchor="middle"))
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#999999" stroke-width="1"/>')
    # Legend.
    parts.append(f'<rect x="{left}" y="8" width="10" height="10" fill="{OUTREACH_COLOUR}"/>')
    parts.append(_text(left + 14, 17, "Outreach sent"))
    parts.append(f'<rect x="{left + 120}" y="8" width="10" height="10" fill="{REPLIES_COLOUR}"/>')
    parts.append(_text(left + 134, 17, "Replies received"))
    parts.append("</svg>")
    return "".join(parts)


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-family="Helvetica, Arial, sans-serif" font-size="11" '
        f'fill="#555555" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _nice_step(peak: int) -> int:
    """A grid step giving at most about five lines: 1, 2, 5, 10, 20, 50, ..."""
    for magnitude in (1, 10, 100, 1000, 10000):
        for base in (1, 2, 5):
            if peak / (base * magnitude) <= 5:
                return base * magnitude
    return 100000
