"""The robot network from walkable OSM ways: junction-split, simplified, clipped, connected."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from planner._osm_read import OsmData
from planner.geo import FloatArray, LocalFrame


def network_lines(
    data: OsmData,
    frame: LocalFrame,
    area: Polygon,
    *,
    simplify_m: float,
    max_segment_m: float,
    decimals: int,
) -> list[FloatArray]:
    """Walkable ways as local polylines that end exactly at junctions, largest component only.

    Lines are densified to `max_segment_m` after simplification: robots snap onto graph nodes,
    so a long straight sidewalk needs vertices along it for a doorstep beside it to be reachable.
    """
    use: dict[int, int] = {}
    for refs in data.walk_refs:
        for i, ref in enumerate(refs):
            # Way ends count twice so they always split; inner nodes split once another way shares them.
            use[ref] = use.get(ref, 0) + (2 if i in (0, len(refs) - 1) else 1)
    pieces: list[FloatArray] = []
    for refs, lat_lon in zip(data.walk_refs, data.walk_lat_lon, strict=True):
        start = 0
        for i in range(1, len(refs)):
            if use[refs[i]] >= 2 or i == len(refs) - 1:
                pieces.extend(_valid_runs(lat_lon[start : i + 1]))
                start = i
    lines: list[FloatArray] = []
    for run in pieces:
        line = LineString(frame.points_to_local(run)).simplify(simplify_m)
        line = shapely.segmentize(line, max_segment_m)
        clipped = line.intersection(area)
        for part in getattr(clipped, "geoms", [clipped]):
            if isinstance(part, LineString) and not part.is_empty and part.length > 0.5:
                xy = round_line(np.asarray(part.coords, dtype=np.float64), frame, decimals)
                if len(xy) >= 2:
                    lines.append(xy)
    return largest_component(lines)


def _valid_runs(lat_lon: FloatArray) -> list[FloatArray]:
    """Split at nodes missing from the extract (NaN) instead of bridging the gap."""
    ok = ~np.isnan(lat_lon[:, 0])
    runs: list[FloatArray] = []
    start = None
    for i, good in enumerate([*ok.tolist(), False]):
        if good and start is None:
            start = i
        elif not good and start is not None:
            if i - start >= 2:
                runs.append(lat_lon[start:i])
            start = None
    return runs


def round_line(xy: FloatArray, frame: LocalFrame, decimals: int) -> FloatArray:
    """Round through WGS84 as the writer does, so junctions stay identical after a reload."""
    lat_lon = np.round(frame.points_to_wgs84(xy), decimals)
    keep = np.ones(len(lat_lon), dtype=bool)
    keep[1:] = np.any(np.diff(lat_lon, axis=0) != 0, axis=1)
    if keep.sum() < 2:
        return np.empty((0, 2), dtype=np.float64)
    return np.asarray(frame.points_to_local(lat_lon[keep]), dtype=np.float64)


def largest_component(lines: Sequence[FloatArray]) -> list[FloatArray]:
    """The lines of the connected piece with the most length (lines meet at shared end points)."""
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def key(p: FloatArray) -> tuple[int, int]:
        return round(float(p[0]) * 10), round(float(p[1]) * 10)

    def find(k: tuple[int, int]) -> tuple[int, int]:
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for ln in lines:
        parent[find(key(ln[0]))] = find(key(ln[-1]))
    length: dict[tuple[int, int], float] = {}
    for ln in lines:
        root = find(key(ln[0]))
        length[root] = length.get(root, 0.0) + float(np.hypot(*np.diff(ln, axis=0).T).sum())
    if not length:
        return []
    best = max(length, key=lambda r: (length[r], r))
    return [ln for ln in lines if find(key(ln[0])) == best]
