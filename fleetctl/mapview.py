"""Draw a site as a PNG: operating area, no-fly zones, sidewalks, depots, drop points and tracks.

People would rather look at a route than read a list of coordinates, so every planning
command can write one of these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Polygon as MplPolygon

from planner.airspace import NoFlyZone
from planner.geo import FloatArray
from planner.site import Site


@dataclass(frozen=True)
class Track:
    """A polyline in the site's local frame (metres), drawn with a label."""

    label: str
    points_xy_m: FloatArray
    color: str
    style: str = "-"


def render_site_map(
    site: Site,
    out_png: Path,
    *,
    tracks: Sequence[Track] = (),
    markers: Sequence[tuple[str, tuple[float, float]]] = (),
    title: str | None = None,
    at_s: float | None = None,
    added_zones: Sequence[NoFlyZone] = (),
) -> Path:
    """Write the map to `out_png` and return its path. `added_zones` (added while a run went on) are
    drawn hatched and named, apart from the site's own."""
    fig, ax = plt.subplots(figsize=(10, 10), dpi=110)
    try:
        ax.set_aspect("equal")
        ax.set_facecolor("#f7f7f2")
        ax_xy = np.asarray(site.area.exterior.coords)
        ax.add_patch(MplPolygon(ax_xy, closed=True, fill=False, edgecolor="#2b6cb0", lw=1.6, ls="--"))
        for line in site.sidewalk_lines:
            ax.plot(line[:, 0], line[:, 1], color="#b0b0b0", lw=0.6, zorder=1)
        for zone in site.zones:
            if not zone.is_active(at_s):
                continue
            shape = zone.shape
            polys = list(shape.geoms) if hasattr(shape, "geoms") else [shape]
            for poly in polys:
                ax.add_patch(
                    MplPolygon(
                        np.asarray(poly.exterior.coords), closed=True, facecolor="#e53e3e44",
                        edgecolor="#c53030", lw=0.8, zorder=2,
                    )
                )
        for zone in added_zones:
            shape = zone.shape
            for poly in list(shape.geoms) if hasattr(shape, "geoms") else [shape]:
                ax.add_patch(MplPolygon(np.asarray(poly.exterior.coords), closed=True, facecolor="#dd6b2033",
                                        edgecolor="#c05621", hatch="///", lw=1.2, zorder=2))
            centre = shape.centroid
            ax.annotate(zone.zone_id, (centre.x, centre.y), ha="center", va="center", fontsize=8,
                        color="#7b341e", weight="bold", zorder=8)
        for dp in site.drop_points.values():
            ax.plot(*dp.xy_m, marker=".", color="#805ad5" if dp.kind != "doorstep" else "#a0aec0",
                    ms=4 if dp.kind == "doorstep" else 7, zorder=3)
        for depot in site.depots.values():
            ax.plot(*depot.xy_m, marker="s", color="#2f855a", ms=11, zorder=5)
            ax.annotate(depot.name, depot.xy_m, xytext=(6, 6), textcoords="offset points", fontsize=9,
                        color="#22543d", weight="bold")
        for track in tracks:
            pts = np.asarray(track.points_xy_m, dtype=float)
            ax.plot(pts[:, 0], pts[:, 1], track.style, color=track.color, lw=2.4, label=track.label, zorder=6)
        for label, xy in markers:
            ax.plot(*xy, marker="*", color="#d69e2e", ms=16, zorder=7)
            ax.annotate(label, xy, xytext=(7, -12), textcoords="offset points", fontsize=9)
        ax.plot([], [], color="#c53030", lw=6, alpha=0.4, label="no-fly zone (buffered in planning)")
        if added_zones:
            ax.add_patch(MplPolygon(np.zeros((3, 2)), facecolor="#dd6b2033", edgecolor="#c05621", hatch="///",
                                    label="no-fly zone added during the run"))
        ax.plot([], [], color="#b0b0b0", lw=1, label="sidewalk network")
        ax.plot([], [], "s", color="#2f855a", label="depot")
        ax.set_xlabel("east (m)")
        ax.set_ylabel("north (m)")
        ax.set_title(title or f"{site.name}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, framealpha=0.9)  # off the map: it hid a depot and the attribution
        ax.text(0.99, 0.005, "Map data © OpenStreetMap contributors, ODbL", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="#4a5568")
        bounds = site.area.bounds
        pad_m = 40.0
        ax.set_xlim(bounds[0] - pad_m, bounds[2] + pad_m)
        ax.set_ylim(bounds[1] - pad_m, bounds[3] + pad_m)
        out_png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_png, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_png
