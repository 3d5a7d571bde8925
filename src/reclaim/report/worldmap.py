"""The land of the world as one SVG path, for the report's sign-in map (no tile server, no network).

``assets/land-110m.json`` is ``land-110m.json`` from the npm package world-atlas 2.0.2 (TopoJSON of
Natural Earth's 1:110m land, version 4.1.0), unchanged. Natural Earth is in the public domain;
world-atlas is © Michael Bostock, ISC licence (``assets/NOTICE.md``). The projection is
equirectangular: x = longitude + 180, y = 90 - latitude, in a 360 x 180 box.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from itertools import pairwise
from typing import Any

WIDTH, HEIGHT = 360, 180
ATTRIBUTION = "Land: Natural Earth (public domain), via world-atlas (ISC)"


def project(lat: float, lon: float) -> tuple[float, float]:
    return lon + 180, 90 - lat


def _arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Decode the quantized, delta-encoded arcs to (lon, lat) points."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    decoded = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        decoded.append(points)
    return decoded


def _ring(arcs: list[list[tuple[float, float]]], indices: list[int]) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    for index in indices:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]  # ~i: arc i reversed
        points.extend(arc[1:] if points else arc)  # consecutive arcs share an end point
    return points


@cache
def land_path() -> str:
    """The ``d`` of one path holding every land polygon."""
    text = (resources.files("reclaim.report") / "assets" / "land-110m.json").read_text(encoding="utf-8")
    topology = json.loads(text)
    arcs = _arcs(topology)
    parts: list[str] = []
    for geometry in topology["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for ring in polygon:
                for points in _unwrapped(_ring(arcs, ring)):
                    xy = (project(lat, lon) for lon, lat in points)
                    parts.append("M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + "Z")
    return "".join(parts)


def _unwrapped(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """A ring that crosses the antimeridian (Russia, Fiji) would draw a line across the whole map:
    it is made continuous past +-180 degrees and drawn twice, once shifted by 360, the box clipping
    each copy. A ring around a pole (Antarctica) does not close that way and stays as it is."""
    shift = 0.0
    out = [points[0]]
    for (lon0, _), (lon1, lat1) in pairwise(points):
        if lon1 - lon0 > 180:
            shift -= 360
        elif lon0 - lon1 > 180:
            shift += 360
        out.append((lon1 + shift, lat1))
    if shift or all(-180 <= lon <= 180 for lon, _ in out):
        return [points]
    offset = -360 if max(lon for lon, _ in out) > 180 else 360
    return [out, [(lon + offset, lat) for lon, lat in out]]
