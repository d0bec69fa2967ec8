"""`fleetctl plan`: a drone path and a robot route between two places, with time and energy."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fleetctl.mapview import Track, render_site_map
from fleetctl.trip import TripEstimate, Wind, drone_trip, first_model, robot_trip
from planner.errors import PlanningError
from planner.flight import FlightPlanner
from planner.site import Site, load_site
from sitl.worlds import bundled_site_path

_LAT_LON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "plan",
        help="plan a drone flight and a robot route between two places on a site",
        description=(
            "Plan a geofenced drone flight and a sidewalk robot route from a depot to a drop point "
            "(or between any two points) and print distance, time and energy for each, with the "
            "battery reserve check. Places are depot or drop-point names, or 'lat,lon'."
        ),
    )
    p.add_argument("--site", type=Path, default=None, help="site folder (default: the bundled Helsinki site)")
    p.add_argument("--from", dest="origin", default=None, help="start: depot/drop point name or 'lat,lon' (default: first depot)")
    p.add_argument("--to", dest="destination", default=None,
                   help="goal: depot/drop point name or 'lat,lon' (default: the site's first locker)")
    p.add_argument("--payload-kg", type=float, default=1.0, help="parcel mass carried out (default 1.0)")
    p.add_argument("--wind-m-s", type=float, default=0.0, help="wind speed at cruise height (default 0)")
    p.add_argument("--wind-from-deg", type=float, default=0.0, help="direction the wind blows from, deg from north")
    p.add_argument("--alt-m", type=float, default=None, help="drone cruise altitude AGL (default: the site's first layer)")
    p.add_argument("--map", dest="map_png", type=Path, default=None, help="write a PNG map of the site and both routes")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.set_defaults(func=run)


def _resolve(site: Site, text: str) -> tuple[str, tuple[float, float]]:
    match = _LAT_LON.match(text)
    if match:
        lat, lon = float(match.group(1)), float(match.group(2))
        return f"{lat:.5f},{lon:.5f}", site.frame.to_local(lat, lon)
    return text, site.place_xy(text)


def _default_destination(site: Site, start_xy: tuple[float, float]) -> str:
    """The farthest locker both vehicle kinds serve (a trip that shows the airspace at work)."""
    both = [dp for dp in site.drop_points.values() if dp.drone_ok and dp.robot_ok]
    candidates = [dp for dp in both if dp.kind == "locker"] or both or list(site.drop_points.values())
    if not candidates:
        raise PlanningError(f"site {site.name!r} has no drop points: give --to")
    far = max(candidates, key=lambda dp: math.dist(dp.xy_m, start_xy))
    return far.name


def _refusal(site: Site, place: str, kind: str) -> str | None:
    """Why a named drop point does not take this vehicle kind, if it does not."""
    dp = site.drop_points.get(place)
    if dp is None:
        return None
    if kind == "drone" and not dp.drone_ok:
        return f"drop point {place!r} takes no drone deliveries (drone_ok = false)"
    if kind == "robot" and not dp.robot_ok:
        return f"drop point {place!r} is not reachable for robots (robot_ok = false)"
    return None


def _row(est: TripEstimate) -> dict[str, Any]:
    return {
        "kind": est.kind,
        "model": est.model,
        "one_way_m": round(est.one_way_m, 1),
        "outbound_s": round(est.outbound_s, 1),
        "round_trip_s": round(est.round_trip_s, 1),
        "outbound_wh": round(est.outbound_wh, 2),
        "round_trip_wh": round(est.round_trip_wh, 2),
        "battery_used_pct": round(est.battery_used_pct, 1),
        "margin_wh": round(est.margin_wh, 1),
        "cruise_alt_m": est.cruise_alt_m,
        "path_wgs84": None,
    }


def run(args: argparse.Namespace, console: Console) -> int:
    site = load_site(args.site or bundled_site_path())
    origin_name, start_xy = _resolve(site, args.origin or next(iter(site.depots)))
    dest_name, goal_xy = _resolve(site, args.destination or _default_destination(site, start_xy))
    wind = Wind(args.wind_m_s, args.wind_from_deg)

    results: dict[str, dict[str, Any]] = {}
    tracks: list[Track] = []
    for kind in ("drone", "robot"):
        model = first_model(site, kind)
        if model is None:
            results[kind] = {"kind": kind, "error": f"the site has no {kind} model"}
            continue
        refusal = _refusal(site, dest_name, kind)
        if refusal is not None:
            results[kind] = {"kind": kind, "model": model.name, "error": refusal, "error_type": "DropPointRefuses"}
            continue
        try:
            if kind == "drone":
                est, _ = drone_trip(site, FlightPlanner(site.airspace), start_xy, goal_xy, model,
                                    payload_kg=args.payload_kg, wind=wind, cruise_alt_m=args.alt_m)
            else:
                est, _ = robot_trip(site, start_xy, goal_xy, model, payload_kg=args.payload_kg)
        except PlanningError as exc:
            results[kind] = {"kind": kind, "model": model.name, "error": str(exc), "error_type": type(exc).__name__}
            continue
        row = _row(est)
        lat_lon = site.frame.points_to_wgs84(est.points_xy_m)
        row["path_wgs84"] = [[round(float(a), 7), round(float(b), 7)] for a, b in lat_lon]
        results[kind] = row
        tracks.append(Track(f"{kind} ({model.name}) {est.one_way_m:.0f} m", est.points_xy_m,
                            "#3182ce" if kind == "drone" else "#dd6b20", "-" if kind == "drone" else "--"))

    if args.map_png is not None:
        render_site_map(site, args.map_png, tracks=tracks,
                        markers=[(origin_name, start_xy), (dest_name, goal_xy)],
                        title=f"{site.name}: {origin_name} → {dest_name}")

    if args.json:
        console.print_json(json.dumps({"site": site.name, "from": origin_name, "to": dest_name,
                                       "payload_kg": args.payload_kg, "results": results}))
    else:
        _print_table(console, site, origin_name, dest_name, args.payload_kg, wind, results)
        if args.map_png is not None:
            console.print(f"map written to [bold]{args.map_png}[/bold]")
    return 0 if any("error" not in r for r in results.values()) else 2


def _print_table(console: Console, site: Site, origin: str, dest: str, payload_kg: float, wind: Wind,
                 results: dict[str, dict[str, Any]]) -> None:
    table = Table(title=f"{site.name}: {origin} → {dest}, parcel {payload_kg:g} kg, "
                        f"wind {wind.speed_m_s:g} m/s from {wind.from_deg:g}°")
    for col in ("vehicle", "one way", "out", "round trip", "energy out / total", "battery", "reserve margin"):
        table.add_column(col, justify="right" if col != "vehicle" else "left")
    refusals: list[str] = []
    for kind, r in results.items():
        if "error" in r:
            refusals.append(f"[bold]{kind}[/bold]: {r['error']}")
            table.add_row(f"{kind} {r.get('model', '')}", "[red]refused[/red]", "", "", "", "", "")
            continue
        alt = f" @ {r['cruise_alt_m']:g} m" if r.get("cruise_alt_m") else ""
        table.add_row(
            f"{kind} {r['model']}{alt}", f"{r['one_way_m']:.0f} m", f"{r['outbound_s'] / 60:.1f} min",
            f"{r['round_trip_s'] / 60:.1f} min", f"{r['outbound_wh']:.1f} / {r['round_trip_wh']:.1f} Wh",
            f"{r['battery_used_pct']:.0f} %", f"{r['margin_wh']:.0f} Wh",
        )
    console.print(table)
    for line in refusals:
        console.print(f"[red]refused[/red] {line}")
