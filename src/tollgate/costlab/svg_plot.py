"""A self-contained SVG scatter of price against benchmark score, cost per point annotated.

Written by hand (no plotting library): log-scaled price on x, score on y, dashed curves of
equal cost per point, and each model labelled with its cost per point. Lower right is
dearer per point; upper left is the value corner.
"""

from __future__ import annotations

import math
from decimal import Decimal
from xml.sax.saxutils import escape

from tollgate.catalog.reference import BENCHMARKS
from tollgate.costlab.quality import QualityRow, QualityTable

WIDTH, HEIGHT = 960, 600
LEFT, RIGHT, TOP, BOTTOM = 80, 40, 92, 84
OPEN_COLOUR, CLOSED_COLOUR, BEST_COLOUR = "#0f766e", "#6b7280", "#f59e0b"
FONT = "font-family='Inter, Helvetica, Arial, sans-serif'"
CHAR_W = 6.6  # average glyph width at 12px, for label boxes


def render_quality_svg(table: QualityTable, title: str | None = None) -> str:
    """The table as an SVG document (a string)."""
    rows = list(table.rows)
    bench = BENCHMARKS[table.benchmark]
    basis = {"input": "input", "output": "output", "blended": f"blended ({table.output_share} output)"}[table.basis]
    title = title or f"Cost per quality point: {bench} against {basis} price"
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label='{escape(title)}'>",
        f"<rect width='{WIDTH}' height='{HEIGHT}' fill='#ffffff'/>",
        _text(LEFT, 34, title, size=20, weight="600"),
        _text(LEFT, 56, f"Each dot is a model, labelled with its $ per {bench} point per million {table.basis} tokens.",
              size=12, fill="#4b5563"),
        _text(LEFT, 72, "Dashed curves join equal cost per point: up and to the left is better value.",
              size=12, fill="#4b5563"),
    ]
    if not rows:
        parts.append(_text(LEFT, TOP + 40, "No model has both a price and a score on this basis.", size=14))
        parts.append("</svg>")
        return "\n".join(parts)
    x_of, y_of, x_ticks, y_ticks = _scales(rows)
    plot_right, plot_bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    parts.append(f"<rect x='{LEFT}' y='{TOP}' width='{plot_right - LEFT}' height='{plot_bottom - TOP}' "
                 "fill='#f9fafb' stroke='#d1d5db'/>")
    for value, label in x_ticks:
        x = x_of(value)
        parts.append(f"<line x1='{x:.1f}' y1='{TOP}' x2='{x:.1f}' y2='{plot_bottom}' stroke='#e5e7eb'/>")
        parts.append(_text(x, plot_bottom + 18, label, size=11, anchor="middle", fill="#374151"))
    for value in y_ticks:
        y = y_of(value)
        parts.append(f"<line x1='{LEFT}' y1='{y:.1f}' x2='{plot_right}' y2='{y:.1f}' stroke='#e5e7eb'/>")
        parts.append(_text(LEFT - 8, y + 4, f"{value:g}%", size=11, anchor="end", fill="#374151"))
    parts.append(_text((LEFT + plot_right) / 2, HEIGHT - 40,
                       f"Price, USD per million {table.basis} tokens (log scale)", size=13, anchor="middle"))
    parts.append(f"<text x='22' y='{(TOP + plot_bottom) / 2:.0f}' {FONT} font-size='13' text-anchor='middle' "
                 f"transform='rotate(-90 22 {(TOP + plot_bottom) / 2:.0f})'>{escape(bench)} score</text>")
    curves, taken = _iso_curves(rows, x_of, y_of, (LEFT, TOP, plot_right, plot_bottom))
    parts.extend(curves)
    parts.extend(_points(table, rows, x_of, y_of, (LEFT, TOP, plot_right, plot_bottom), taken))
    parts.append(_legend(plot_right))
    parts.append("</svg>")
    return "\n".join(parts)


def _scales(rows: list[QualityRow]):
    prices = [float(r.price_usd_per_mtok) for r in rows]
    scores = [float(r.score) for r in rows]
    lo = math.floor(math.log10(min(prices) / 1.6) * 4) / 4
    hi = math.ceil(math.log10(max(prices) * 1.8) * 4) / 4
    if hi - lo < 1:
        hi = lo + 1
    y_lo = math.floor((min(scores) - 2) / 2) * 2
    y_hi = math.ceil((max(scores) + 2) / 2) * 2
    step = 2 if y_hi - y_lo <= 20 else 5 if y_hi - y_lo <= 50 else 10
    y_lo, y_hi = math.floor(y_lo / step) * step, math.ceil(y_hi / step) * step
    width, height = WIDTH - RIGHT - LEFT, HEIGHT - BOTTOM - TOP

    def x_of(price: float) -> float:
        return LEFT + (math.log10(price) - lo) / (hi - lo) * width

    def y_of(score: float) -> float:
        return TOP + (y_hi - score) / (y_hi - y_lo) * height

    x_ticks = []
    for decade in range(math.floor(lo) - 1, math.ceil(hi) + 1):
        for mult in (1, 2, 5):
            value = mult * 10.0 ** decade
            if lo <= math.log10(value) <= hi:
                x_ticks.append((value, f"${_plain(value)}"))
    y_ticks = list(range(int(y_lo), int(y_hi) + 1, step))
    return x_of, y_of, x_ticks, y_ticks


def _iso_curves(rows, x_of, y_of, box):
    left, top, right, bottom = box
    parts, taken = [], []
    lo_cpp = min(r.cost_per_point for r in rows)
    hi_cpp = max(r.cost_per_point for r in rows)
    candidates = [Decimal(m) * Decimal(10) ** e for e in range(-6, 2) for m in (1, 3)]
    levels = [c for c in candidates if lo_cpp / 3 <= c <= hi_cpp * 3]
    for level in levels:
        points = []
        for i in range(121):
            x = left + (right - left) * i / 120
            price = _price_at(x, x_of)
            y = y_of(price / float(level))
            if top <= y <= bottom:
                points.append(f"{x:.1f},{y:.1f}")
        if len(points) < 2:
            continue
        parts.append(f"<polyline points='{' '.join(points)}' fill='none' stroke='#94a3b8' "
                     "stroke-dasharray='5 4' stroke-width='1'/>")
        first_x, first_y = (float(v) for v in points[0].split(","))
        label = f"${_plain(float(level))}/pt"
        lx, ly = min(first_x + 4, right - 4 - CHAR_W * len(label)), min(first_y, bottom - 6)
        parts.append(_text(lx, ly, label, size=10, fill="#64748b"))
        taken.append((lx, ly - 10, lx + CHAR_W * len(label), ly + 2))
    return parts, taken


def _price_at(x: float, x_of) -> float:
    """Invert the log x scale numerically from two known points."""
    x1, x2 = x_of(1.0), x_of(10.0)
    return 10 ** ((x - x1) / (x2 - x1))


def _points(table: QualityTable, rows, x_of, y_of, box, taken):
    left, top, right, bottom = box
    placed: list[tuple[float, float, float, float]] = list(taken)
    dots = [(x_of(float(r.price_usd_per_mtok)), y_of(float(r.score))) for r in rows]
    for x, y in dots:
        placed.append((x - 8, y - 8, x + 8, y + 8))
    parts = []
    best = table.best
    for row, (x, y) in zip(rows, dots):
        colour = OPEN_COLOUR if row.model.open_weights else CLOSED_COLOUR
        if row is best:
            parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='12' fill='none' stroke='{BEST_COLOUR}' stroke-width='3'/>")
        parts.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='7' fill='{colour}' stroke='#ffffff' stroke-width='1.5'>"
                     f"<title>{escape(row.model.name)}: {row.score}%, ${row.price_usd_per_mtok}/M, "
                     f"${row.cost_per_point_display()} per point</title></circle>")
        line1 = row.model.name
        line2 = f"${_short(row.cost_per_point)}/pt · {row.score}%"
        if row is not best:
            line2 += f" · {table.times_best(row):.1f}x best"
        width = CHAR_W * max(len(line1), len(line2))
        box_xy = _place(x, y, width, 30, placed, box)
        placed.append(box_xy)
        bx, by = box_xy[0], box_xy[1]
        parts.append(f"<rect x='{bx - 3:.1f}' y='{by - 2:.1f}' width='{width + 6:.1f}' height='34' rx='3' "
                     "fill='#ffffff' fill-opacity='0.85'/>")
        parts.append(_text(bx, by + 12, line1, size=12, weight="600", fill="#111827"))
        parts.append(_text(bx, by + 27, line2, size=11, fill=BEST_COLOUR if row is best else "#374151"))
    return parts


def _place(x, y, width, height, placed, box):
    """First label position around the dot that overlaps nothing and stays in the plot."""
    left, top, right, bottom = box
    offsets = [(16, -height / 2), (-16 - width, -height / 2), (12, -height - 8), (12, 8),
               (-12 - width, -height - 8), (-12 - width, 8), (-width / 2, -height - 14), (-width / 2, 14)]
    for extra in range(0, 200, 18):
        for dx, dy in offsets:
            for sign in (1, -1) if extra else (1,):
                bx, by = x + dx, y + dy + sign * extra
                candidate = (bx, by, bx + width, by + height)
                if bx < left + 2 or bx + width > right - 2 or by < top + 2 or by + height > bottom - 2:
                    continue
                if not any(_overlap(candidate, other) for other in placed):
                    return candidate
    bx = min(max(x + 12, left + 2), right - width - 2)
    return (bx, y - height / 2, bx + width, y + height / 2)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _legend(plot_right: float) -> str:
    x, y = plot_right - 330, HEIGHT - 22
    return "".join([
        f"<circle cx='{x}' cy='{y - 4}' r='6' fill='{OPEN_COLOUR}'/>",
        _text(x + 10, y, "open weights", size=11),
        f"<circle cx='{x + 100}' cy='{y - 4}' r='6' fill='{CLOSED_COLOUR}'/>",
        _text(x + 110, y, "proprietary", size=11),
        f"<circle cx='{x + 200}' cy='{y - 4}' r='8' fill='none' stroke='{BEST_COLOUR}' stroke-width='3'/>",
        _text(x + 212, y, "cheapest per point", size=11),
    ])


def _text(x, y, text, size=12, anchor="start", weight="400", fill="#111827") -> str:
    return (f"<text x='{x:.1f}' y='{y:.1f}' {FONT} font-size='{size}' font-weight='{weight}' "
            f"text-anchor='{anchor}' fill='{fill}'>{escape(str(text))}</text>")


def _plain(value: float) -> str:
    """A tick value without exponent or trailing zeros: 0.05 -> '0.05', 10 -> '10'."""
    return format(Decimal(repr(value)).normalize(), "f")


def _short(value: Decimal) -> str:
    """Two significant figures for a label: 0.0025791 -> '0.0026'."""
    if value == 0:
        return "0"
    exponent = value.adjusted()
    return format(value.quantize(Decimal(1).scaleb(exponent - 1)).normalize(), "f")
