"""The end of a demo: KPIs from what the broker said and the tracks recorded, as a JSON report, rich
tables and a map of the site with every track and every order's drop point coloured by outcome.

Definitions (times are simulated):
- received: orders the shop sent; each ends delivered, failed (failed, or returned: the parcel came
  back), cancelled, rejected, or is still open when the drain period ran out.
- on time: delivered at or before its window's latest; on-time rate = on time / delivered.
- lateness: delivered minus window latest, 0 when on time; delivery time: accepted -> delivered.
- distance: each vehicle's horizontal track length; energy: the falls of its reported charge times
  its pack (charging not counted).
- separation: the closest two drones came horizontally while both were airborne (fleetctl.tracks,
  from positions sampled once per simulated second), at any height and within 10 m of each other's
  height; zone incursions: drone samples inside an active no-fly zone (more than 1 m in).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from rich.console import Console
from rich.table import Table

from fleetctl.demo.watch import Battery, OrderView, Shop
from fleetctl.mapview import Track, render_site_map
from fleetctl.orders.model import utc_iso
from fleetctl.tracks import AIRBORNE_M, Closest, min_drone_separation, zone_incursions
from fleetctl.tracks import Track as SampledTrack
from planner.airspace import NoFlyZone
from planner.geo import FloatArray
from planner.site import Site

REPORT_VERSION = 1
#: Two drones within this height of each other share airspace: their horizontal distance is the one
#: that matters (as the end-to-end tests' track check).
SAME_LEVEL_M = 10.0
INCURSION_TOLERANCE_M = 1.0
FAILED_STATES = frozenset({"failed", "returned"})
#: Drop point colours by outcome (name, colour, matplotlib marker style).
OUTCOMES = {
    "on_time": ("delivered on time", "#2f9e44", "o"),
    "late": ("delivered late", "#f08c00", "o"),
    "failed": ("failed", "#e03131", "o"),
    "rejected": ("rejected", "#862e9c", "x"),
    "other": ("cancelled / still open", "#495057", "x"),
}
VEHICLE_COLOURS = ("#1c7ed6", "#d6336c", "#0ca678", "#f59f00", "#7048e8", "#e8590c", "#15aabf", "#5c940d",
                   "#ae3ec9", "#364fc7", "#c92a2a", "#087f5b")


class _Tracks(Protocol):
    @property
    def tracks(self) -> Mapping[str, SampledTrack]: ...


class _Batteries(Protocol):
    @property
    def batteries(self) -> Mapping[str, Battery]: ...


class Recorded(Protocol):
    """The tracks and batteries of a run: sampled while it runs (`fleetctl.demo.watch.Recording`), or
    read back from its folder (`fleetctl.demo.rebuild`)."""

    @property
    def tracks(self) -> _Tracks: ...

    @property
    def batteries(self) -> _Batteries: ...

    @property
    def start(self) -> datetime: ...


def outcome(order: OrderView) -> str:
    if order.state == "delivered":
        late = order.late_s
        return "on_time" if late is None or late <= 0.0 else "late"
    if order.state in FAILED_STATES:
        return "failed"
    if order.state == "rejected":
        return "rejected"
    return "other"


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


def _min(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 2)


def order_rows(shop: Shop) -> list[dict[str, Any]]:
    rows = []
    for o in shop.orders.values():
        p = o.planned
        accepted, delivered = o.accepted_at, o.delivered_at
        rows.append({
            "order_id": p.order_id, "at_s": round(p.at_s, 1), "dropoff": p.dropoff, "weight_kg": p.weight_kg,
            "size": p.size, "priority": p.priority, "handoff": p.handoff, "state": o.state or "unanswered",
            "outcome": outcome(o), "reason": o.reason if o.state != "delivered" else None,
            "failed_reason": o.failed_reason, "vehicle_id": o.vehicle_id, "kinds": o.kinds,
            "sent_at": utc_iso(o.sent_at), "window_latest": utc_iso(o.window_latest),
            "accepted_at": utc_iso(accepted) if accepted else None,
            "delivered_at": utc_iso(delivered) if delivered else None,
            "late_s": None if o.late_s is None else round(o.late_s, 1),
            "delivery_time_s": round((delivered - accepted).total_seconds(), 1) if delivered and accepted else None,
        })
    return rows


def _closest(found: Closest | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"horizontal_m": round(found.horizontal_m, 1), "vertical_m": round(found.vertical_m, 1),
            "vehicles": list(found.pair), "at_s": round(found.t_s, 1)}


def kpis(shop: Shop, rec: Recorded, site: Site, zones: Sequence[NoFlyZone] | None = None) -> dict[str, Any]:
    """`zones`: the no-fly zones the tracks are checked against (default: the site's; a run that
    added zones passes those too, each active from when it was added)."""
    orders = list(shop.orders.values())
    states = [o.state for o in orders]
    delivered = [o for o in orders if o.state == "delivered"]
    late = [max(0.0, o.late_s or 0.0) for o in delivered]
    on_time = sum(1 for o in delivered if (o.late_s or 0.0) <= 0.0)
    times = [(o.delivered_at - o.accepted_at).total_seconds() for o in delivered
             if o.delivered_at is not None and o.accepted_at is not None]
    accepted = sum(1 for o in orders if o.accepted_at is not None or o.state not in (None, "received", "rejected"))
    counts = {
        "received": len(orders),
        "accepted": accepted,
        "rejected": states.count("rejected"),
        "delivered": len(delivered),
        "failed": sum(1 for s in states if s in FAILED_STATES),
        "cancelled": states.count("cancelled"),
    }
    counts["open"] = counts["received"] - sum(counts[k] for k in ("rejected", "delivered", "failed", "cancelled"))
    tracks = list(rec.tracks.tracks.values())
    start_s = rec.start.timestamp()
    at_any = min_drone_separation(tracks)
    same_level = min_drone_separation(tracks, vertical_m=SAME_LEVEL_M)
    incursions = zone_incursions(tracks, site.zones if zones is None else zones, tolerance_m=INCURSION_TOLERANCE_M)
    separations = {"any_height": _closest(at_any), f"within_{SAME_LEVEL_M:g}_m_vertically": _closest(same_level)}
    for found in separations.values():
        if found is not None:
            found["at_s"] = round(found["at_s"] - start_s, 1)
    return {
        "orders": counts,
        "on_time": on_time,
        "on_time_rate": round(on_time / len(delivered), 4) if delivered else None,
        "on_time_of_accepted": round(on_time / accepted, 4) if accepted else None,
        "lateness_p95_min": _min(_pct(late, 95)),
        "delivery_time_p50_min": _min(_pct(times, 50)),
        "delivery_time_p95_min": _min(_pct(times, 95)),
        "distance_km": round(sum(t.distance_m for t in tracks) / 1000.0, 2),
        "energy_used_wh": round(sum(b.used_wh for b in rec.batteries.batteries.values()), 1),
        "min_drone_separation": separations,
        "zone_incursions": {"samples": len(incursions), "zones": sorted({i.zone_id for i in incursions}),
                            "vehicles": sorted({i.vehicle_id for i in incursions}),
                            "deepest_m": round(max((i.depth_m for i in incursions), default=0.0), 1)},
        "incidents": shop.incident_count,
    }


def _airborne_s(t: FloatArray, alt: FloatArray) -> float:
    if len(t) < 2:
        return 0.0
    up = (alt[:-1] > AIRBORNE_M) & (alt[1:] > AIRBORNE_M)
    return float(np.diff(t)[up].sum())


def vehicle_rows(shop: Shop, rec: Recorded) -> list[dict[str, Any]]:
    rows = []
    for vid, view in shop.vehicles.items():
        track = rec.tracks.tracks.get(vid)
        battery = rec.batteries.batteries.get(vid)
        airborne = None
        if track is not None and view.kind == "drone":
            t, _, _, alt = track.arrays()
            airborne = round(_airborne_s(t, alt) / 60.0, 1)
        rows.append({
            "vehicle_id": vid, "kind": view.kind, "sorties": len(view.sorties),
            "delivered": sum(1 for o in shop.orders.values() if o.state == "delivered" and o.vehicle_id == vid),
            "distance_km": round(track.distance_m / 1000.0, 2) if track else None,
            "airborne_min": airborne,
            "energy_used_wh": round(battery.used_wh, 1) if battery else None,
            "energy_charged_wh": round(battery.charged_wh, 1) if battery else None,
            "battery_end_percent": None if view.battery_percent is None else round(view.battery_percent, 1),
            "state_end": view.activity, "mode_end": view.mode,
        })
    return rows


@dataclass
class Report:
    data: dict[str, Any]
    json_path: Path
    map_path: Path | None


def build(shop: Shop, rec: Recorded, site: Site, meta: Mapping[str, Any],
          zones: Sequence[NoFlyZone] | None = None) -> dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        **meta,
        "kpis": kpis(shop, rec, site, zones),
        "vehicles": vehicle_rows(shop, rec),
        "orders": order_rows(shop),
        "incidents": [{"at": utc_iso(i.at), "what": i.text} for i in shop.incidents],
        "bus": {"events_seen": shop.events_seen, "event_gaps": shop.gaps, "unreadable": shop.bad_messages,
                "rejected_messages": len(shop.rejected_messages)},
    }


def write_json(data: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def draw_map(site: Site, shop: Shop, rec: Recorded, path: Path, title: str,
             added_zones: Sequence[NoFlyZone] = ()) -> Path:
    """The site with every vehicle's track (a colour each; robots dashed), every order's drop
    point coloured by its outcome, and the zones added during the run (fleetctl.mapview; it carries
    the OpenStreetMap attribution)."""
    drawn: list[Track] = []
    for i, vid in enumerate(shop.vehicles):
        track = rec.tracks.tracks.get(vid)
        if track is not None and track.distance_m >= 1.0:  # (a vehicle that never left its pad: no line)
            style = "-" if track.kind == "drone" else "--"
            drawn.append(Track(f"{vid} ({track.distance_m / 1000.0:.1f} km)", track.points_xy_m(),
                               VEHICLE_COLOURS[i % len(VEHICLE_COLOURS)], style))
    by_outcome: dict[str, list[tuple[float, float]]] = {}
    for o in shop.orders.values():
        point = site.drop_points.get(o.planned.dropoff)
        if point is not None:
            by_outcome.setdefault(outcome(o), []).append(point.xy_m)
    for key, (label, colour, marker) in OUTCOMES.items():
        points = by_outcome.get(key)
        if points:
            drawn.append(Track(f"{label} ({len(points)})", np.asarray(points, dtype=np.float64), colour, marker))
    return render_site_map(site, path, tracks=drawn, title=title, added_zones=added_zones)


def write_tracks(rec: Recorded, path: Path) -> Path:
    """Every recorded track sample as CSV: simulated seconds since the start, vehicle, local east and
    north (m, the site's frame), height above home (m)."""
    start_s = rec.start.timestamp()
    lines = ["t_s,vehicle_id,x_m,y_m,alt_m"]
    for vid, track in rec.tracks.tracks.items():
        lines += [f"{t - start_s:.1f},{vid},{x:.1f},{y:.1f},{alt:.1f}"
                  for t, x, y, alt in zip(track.t_s, track.x_m, track.y_m, track.alt_m, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def kpi_table(data: Mapping[str, Any]) -> Table:
    k = data["kpis"]
    c = k["orders"]
    timing = data.get("timing", {})
    table = Table(title="demo KPIs", title_justify="left")
    table.add_column("KPI", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for name in ("received", "accepted", "rejected", "delivered", "failed", "cancelled", "open"):
        table.add_row(f"orders {name}", str(c[name]))
    rate = k["on_time_rate"]
    table.add_row("on time (of delivered)", "-" if rate is None else f"{k['on_time']} ({100.0 * rate:.1f} %)")
    table.add_row("lateness p95", _fmt(k["lateness_p95_min"], " min"))
    table.add_row("delivery time p50 / p95", f"{_fmt(k['delivery_time_p50_min'])} / "
                                             f"{_fmt(k['delivery_time_p95_min'], ' min')}")
    for key, label in (("any_height", "least drone separation"),
                       (f"within_{SAME_LEVEL_M:g}_m_vertically", f"  ... within {SAME_LEVEL_M:g} m of height")):
        sep = k["min_drone_separation"][key]
        table.add_row(label, "-" if sep is None else f"{sep['horizontal_m']:.1f} m ({'/'.join(sep['vehicles'])}, "
                                                     f"{sep['vertical_m']:.0f} m vert.)")
    zi = k["zone_incursions"]
    table.add_row("no-fly zone incursions", str(zi["samples"]) + (f" ({', '.join(zi['zones'])})" if zi["samples"] else ""))
    table.add_row("distance, all vehicles", _fmt(k["distance_km"], " km"))
    table.add_row("energy drawn, all vehicles", _fmt(k["energy_used_wh"], " Wh"))
    table.add_row("incidents", str(k["incidents"]))
    if timing:
        table.add_row("simulated", f"{timing['simulated_s'] / 3600.0:.2f} h")
        table.add_row("wall time, run / total", f"{timing['run_wall_s']:.0f} s / {timing['total_wall_s']:.0f} s")
        table.add_row("speed-up achieved (asked)", f"{timing['speed_up']:.1f}x ({timing['speed']:g}x)")
    return table


def vehicle_table(data: Mapping[str, Any]) -> Table:
    table = Table(title="per vehicle", title_justify="left")
    for col in ("vehicle", "kind", "sorties", "deliv.", "km", "air min", "Wh drawn", "battery"):
        table.add_column(col, justify="left" if col in ("vehicle", "kind") else "right", no_wrap=True)
    for v in data["vehicles"]:
        table.add_row(v["vehicle_id"], v["kind"], str(v["sorties"]), str(v["delivered"]), _fmt(v["distance_km"]),
                      _fmt(v["airborne_min"]), _fmt(v["energy_used_wh"], digits=0),
                      _fmt(v["battery_end_percent"], " %", digits=0))
    return table


def show(console: Console, data: Mapping[str, Any]) -> None:
    console.print(kpi_table(data))
    console.print(vehicle_table(data))
    console.print("Times are simulated. Delivery time: accepted -> delivered. Separation: horizontal, both drones "
                  "airborne. Energy: the falls of each battery's reported charge.", soft_wrap=True, style="dim")
