"""The report's pictures as inline SVG, made here so the page needs no script library and no network:
the sign-in map (equirectangular, land from ``worldmap``) and bar charts."""

from __future__ import annotations

import math

from reclaim.report.data import Bar, Location
from reclaim.report.text import html_text as h
from reclaim.report.worldmap import project

LAND_ID = "land"  # the one land path, defined once per page and drawn by each map with <use>
# the visible part of the 360 x 180 box: latitude 82 N to 58 S (Antarctica left out)
MAP_BOX = (0.0, 8.0, 360.0, 140.0)
MARGIN = 6.0  # degrees around the sign-ins
MIN_WIDTH = 60.0  # degrees of longitude at the closest zoom: the region stays recognisable


def land_defs(path: str) -> str:
    return (
        '<svg class="defs" aria-hidden="true" focusable="false" width="0" height="0">'
        f'<defs><path id="{LAND_ID}" d="{path}"/></defs></svg>'
    )


def view_box(locations: list[Location]) -> tuple[float, float, float, float]:
    """The part of the world the sign-ins lie in, with a margin, in the map's proportions."""
    x0, _, w, hgt = MAP_BOX
    if not locations:
        return MAP_BOX
    points = [project(loc.lat, loc.lon) for loc in locations]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    aspect = w / hgt
    width = max(max(xs) - min(xs) + 2 * MARGIN, (max(ys) - min(ys) + 2 * MARGIN) * aspect, MIN_WIDTH)
    if width >= w:
        return MAP_BOX
    height = width / aspect
    left = min(max((max(xs) + min(xs)) / 2 - width / 2, x0), x0 + w - width)
    top = min(max((max(ys) + min(ys)) / 2 - height / 2, 0), 180 - height)
    return left, top, width, height


def sign_in_map(locations: list[Location], label: str) -> str:
    """A dot per location, its area by the number of sign-ins; suspicious ones red and on top. The
    map zooms to where the sign-ins are; dots keep their size on screen whatever the zoom."""
    x0, y0, w, hgt = view_box(locations)
    scale = w / MAP_BOX[2]
    parts = [
        f'<svg class="map" viewBox="{x0:.2f} {y0:.2f} {w:.2f} {hgt:.2f}" role="img" aria-label="{h(label)}">',
        f'<rect class="sea" x="{x0:.2f}" y="{y0:.2f}" width="{w:.2f}" height="{hgt:.2f}"/>',
        f'<use href="#{LAND_ID}" class="land"/>',
    ]
    biggest = max((loc.count for loc in locations), default=1)
    # big dots first, so small ones stay visible; suspicious ones last, above all
    for loc in sorted(locations, key=lambda loc: (loc.suspicious, -loc.count)):
        x, y = project(loc.lat, loc.lon)
        radius = (1.2 + 4.8 * math.sqrt(loc.count / biggest)) * scale
        classes = "dot" + (" suspicious" if loc.suspicious else "") + (" approx" if loc.approx else "")
        where = ", ".join(p for p in (loc.city, loc.country_name or loc.country or "unknown") if p)
        failed = f", {loc.failures} failed" if loc.failures else ""
        ips = ", ".join(loc.ips)
        title = f"{where}{' (country centre)' if loc.approx else ''}: {loc.count} sign-ins{failed}; {ips}"
        parts.append(
            f'<circle class="{classes}" cx="{x:.3f}" cy="{y:.3f}" r="{radius:.3f}" '
            f'data-country="{h(loc.country or "")}" data-count="{loc.count}">'
            f"<title>{h(title)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _chart(width: float, height: float, label: str) -> str:
    return f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{h(label)}">'


def bar_chart(bars: list[Bar], label: str) -> str:
    """Horizontal bars, one per label: all sign-ins, the failed ones overlaid in red."""
    if not bars:
        return '<p class="empty">none</p>'
    row, label_w, bar_w = 16, 150, 200
    most = max(b.total for b in bars) or 1
    parts = [_chart(label_w + bar_w + 90, row * len(bars) + 4, label)]
    for i, b in enumerate(bars):
        y = 2 + i * row
        total, failed = bar_w * b.total / most, bar_w * b.failed / most
        name = b.label if len(b.label) <= 24 else b.label[:23] + "…"
        bar = f'x="{label_w}" y="{y + 2}" height="{row - 5}"'
        parts.append(
            f"<g><title>{h(f'{b.label}: {b.total} sign-ins, {b.failed} failed')}</title>"
            f'<text class="label" x="{label_w - 4}" y="{y + 11}">{h(name)}</text>'
            f'<rect class="ok" {bar} width="{total:.1f}"/>'
            + (f'<rect class="failed" {bar} width="{failed:.1f}"/>' if b.failed else "")
            + f'<text class="value" x="{label_w + total + 4:.1f}" y="{y + 11}">{b.total}'
            + (f" ({b.failed} failed)" if b.failed else "")
            + "</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def hour_chart(bars: list[Bar], label: str) -> str:
    """Columns for the 24 hours of the day (UTC), failed sign-ins in red at the base."""
    if not any(b.total for b in bars):
        return '<p class="empty">none</p>'
    col, plot_h = 16, 90
    most = max(b.total for b in bars) or 1
    parts = [_chart(col * 24 + 8, plot_h + 30, label)]
    for i, b in enumerate(bars):
        x = 4 + i * col
        total, failed = plot_h * b.total / most, plot_h * b.failed / most
        tip = f"{b.label}:00-{b.label}:59 UTC: {b.total} sign-ins, {b.failed} failed"
        column = f'x="{x + 2}" width="{col - 4}"'
        tick = f'<text class="tick" x="{x + col / 2}" y="{plot_h + 20}">{h(b.label)}</text>'
        parts.append(
            f"<g><title>{h(tip)}</title>"
            f'<rect class="ok" {column} y="{plot_h - total + 6:.1f}" height="{total:.1f}"/>'
            + (
                f'<rect class="failed" {column} y="{plot_h - failed + 6:.1f}" height="{failed:.1f}"/>'
                if b.failed
                else ""
            )
            + (tick if i % 3 == 0 else "")
            + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
