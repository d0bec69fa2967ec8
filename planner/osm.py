"""Build a Site from an OpenStreetMap extract (`.osm.pbf`; needs the `osm` extra, pyosmium).

What becomes what:

- robot network: footways, sidewalks, crossings, pedestrian streets, paths and cycleways open
  to pedestrians (never steps, corridors, platforms or ways closed to the public), split at
  every junction and reduced to the largest connected piece, so each line ends where it meets
  another and every robot route exists;
- no-fly zones: features matching `ZoneRule`s (configurable; `DEFAULT_ZONE_RULES` covers
  hospitals, helipads, schools, government and military sites, railway lines and crowded
  squares); each zone's `reason` names the rule and the tag that caused it, and overlapping
  zones with the same altitude band are merged keeping every reason;
- drop points: addresses (`addr:street` + `addr:housenumber` on nodes or buildings) become
  doorsteps, a deterministic spatially spread subset; parcel lockers in the data and lockers
  generated around each depot, plus landing spots in parks, complete them;
- operating area: the data's convex hull, shrunk by a margin.

Depots, vehicle models and the default fleet come from the `ImportConfig`.
`python -m planner.osm EXTRACT OUT_FOLDER` runs it with the Helsinki demo configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, Polygon

from planner._osm_drops import Surroundings, doorsteps, landing_spots, lockers
from planner._osm_network import network_lines
from planner._osm_read import OsmData, read_osm
from planner._osm_zones import ZoneRule, build_zones, candidates_from_osm
from planner.errors import OsmImportError, PlanningError
from planner.geo import LatLon, LocalFrame
from planner.site import Depot, DropKind, FleetEntry, Pad, Site, load_site, save_site
from planner.vehicle_model import VehicleModel

__all__ = [
    "DEFAULT_ZONE_RULES",
    "HELSINKI_DEMO",
    "QUAD",
    "ROBOT",
    "DepotSpec",
    "ExtraDropPoint",
    "ImportConfig",
    "ImportResult",
    "ZoneRule",
    "build_site",
    "import_osm",
    "main",
]

Progress = Callable[[str, int, int | None], None]
"""progress(stage, done, total): `total` None while the size is unknown."""

DEFAULT_ZONE_RULES: tuple[ZoneRule, ...] = (
    ZoneRule({"amenity": "hospital"}, "hospital", buffer_m=30.0, radius_m=120.0),
    ZoneRule({"aeroway": "helipad"}, "helipad", buffer_m=100.0, radius_m=150.0),
    ZoneRule({"amenity": "school"}, "school", buffer_m=15.0, radius_m=60.0),
    ZoneRule({"amenity": "kindergarten"}, "kindergarten", buffer_m=15.0, radius_m=50.0),
    ZoneRule({"office": "government"}, "government office", buffer_m=20.0, radius_m=60.0),
    ZoneRule({"landuse": "military"}, "military area", buffer_m=50.0, radius_m=150.0),
    ZoneRule({"military": "*"}, "military site", buffer_m=50.0, radius_m=150.0),
    ZoneRule({"railway": "rail"}, "railway line", corridor_m=15.0, exclude={"tunnel": "*"}),
    ZoneRule({"highway": "pedestrian", "area": "yes"}, "crowded pedestrian area", buffer_m=5.0),
    ZoneRule({"place": "square"}, "crowded square", buffer_m=5.0, radius_m=40.0),
)


@dataclass(frozen=True)
class DepotSpec:
    """A depot to place: pads laid out in a row `pad_spacing_m` apart, heading east."""

    name: str
    lat_deg: float
    lon_deg: float
    pads: int = 3
    chargers: int = 4
    pad_spacing_m: float = 6.0


@dataclass(frozen=True)
class ExtraDropPoint:
    name: str
    kind: DropKind
    lat_deg: float
    lon_deg: float
    address: str = ""


@dataclass(frozen=True)
class ImportConfig:
    name: str
    depots: tuple[DepotSpec, ...]
    vehicle_models: tuple[VehicleModel, ...]
    fleet: tuple[FleetEntry, ...]
    zone_rules: tuple[ZoneRule, ...] = DEFAULT_ZONE_RULES
    extra_drop_points: tuple[ExtraDropPoint, ...] = ()
    ground_alt_amsl_m: float = 0.0
    buffer_m: float = 10.0
    cruise_layers_m: tuple[float, ...] = (40.0, 55.0, 70.0)
    area_margin_m: float = 50.0
    max_doorsteps: int = 300
    doorstep_cell_m: float = 60.0
    lockers_per_depot: int = 3
    max_landing_spots: int = 6
    robot_reach_m: float = 25.0
    depot_max_network_m: float = 40.0
    zone_clearance_m: float = 12.0
    line_simplify_m: float = 1.0
    max_segment_m: float = 20.0
    zone_simplify_m: float = 2.0
    decimals: int = 6


@dataclass(frozen=True)
class ImportResult:
    site: Site
    zone_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    drop_point_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)


QUAD = VehicleModel(
    name="quad-x4",
    kind="drone",
    max_payload_kg=2.5,
    cruise_speed_m_s=12.0,
    battery_wh=500.0,
    empty_mass_kg=6.0,
    hover_power_w=650.0,
    cruise_power_w=560.0,
    idle_power_w=15.0,
    climb_speed_m_s=3.0,
    descent_speed_m_s=2.0,
    max_wind_m_s=12.0,
    reserve_fraction=0.25,
    charge_power_w=400.0,
)
ROBOT = VehicleModel(
    name="sidewalk-bot",
    kind="robot",
    max_payload_kg=10.0,
    cruise_speed_m_s=1.5,
    battery_wh=1000.0,
    empty_mass_kg=30.0,
    rolling_power_w=90.0,
    idle_power_w=20.0,
    max_wind_m_s=25.0,
    reserve_fraction=0.15,
    charge_power_w=300.0,
)

HELSINKI_DEMO = ImportConfig(
    name="helsinki",
    depots=(
        # A street corner by the Q-Park Iso-Erottaja entrance, and the Metallitalo car park.
        DepotSpec("erottaja", 60.16574, 24.94578, pads=3, chargers=5),
        DepotSpec("kruununhaka", 60.17717, 24.95029, pads=3, chargers=5),
    ),
    vehicle_models=(QUAD, ROBOT),
    fleet=(
        *(FleetEntry(f"quad-{i}", QUAD.name, "erottaja") for i in (1, 2, 3)),
        *(FleetEntry(f"quad-{i}", QUAD.name, "kruununhaka") for i in (4, 5, 6)),
        *(FleetEntry(f"robot-{i}", ROBOT.name, "erottaja") for i in (1, 2)),
        *(FleetEntry(f"robot-{i}", ROBOT.name, "kruununhaka") for i in (3, 4)),
    ),
    ground_alt_amsl_m=12.0,
)


# --------------------------------------------------------------------------- building


def build_site(pbf_path: str | Path, config: ImportConfig, progress: Progress | None = None) -> ImportResult:
    """Read `pbf_path` and derive a Site (in memory) as `config` says."""
    report: Progress = progress or _quiet
    source = str(pbf_path)
    rules = config.zone_rules
    data = read_osm(Path(pbf_path), lambda tags: any(r.matches(tags) for r in rules), report)
    if not data.node_lat_lon.size:
        raise OsmImportError(source, "the extract holds no nodes")
    frame, area = _frame_and_area(data, config.area_margin_m, source)

    report("zones", 0, 2)
    candidates = candidates_from_osm(data, frame, rules)
    report("zones", 1, 2)
    zones, zone_props = build_zones(candidates, area, config.zone_simplify_m)
    report("zones", 2, 2)

    report("sidewalks", 0, 1)
    lines = network_lines(
        data,
        frame,
        area,
        simplify_m=config.line_simplify_m,
        max_segment_m=config.max_segment_m,
        decimals=config.decimals,
    )
    report("sidewalks", 1, 1)
    if not lines:
        raise OsmImportError(source, "no walkable ways inside the operating area")
    env = Surroundings.build(
        frame,
        area,
        lines,
        [z.shape for z in zones],
        robot_reach_m=config.robot_reach_m,
        zone_clearance_m=config.zone_clearance_m,
        ground_alt_amsl_m=config.ground_alt_amsl_m,
        decimals=config.decimals,
    )
    depots = _depots(config, env, source)

    report("drop points", 0, 3)
    drops, drop_props = doorsteps(data, env, config.max_doorsteps, config.doorstep_cell_m)
    report("drop points", 1, 3)
    extra = lockers(data, env, depots, config.lockers_per_depot)
    report("drop points", 2, 3)
    extra += landing_spots(data, env, config.max_landing_spots)
    for spec in config.extra_drop_points:
        extra.append(env.drop(spec.name, spec.kind, frame.to_local(spec.lat_deg, spec.lon_deg), spec.address))
    for d in extra:
        if d.name in drops or d.name in depots:
            raise OsmImportError(source, f"drop point name {d.name!r} is used twice")
        drops[d.name] = d
    report("drop points", 3, 3)

    site = Site(
        name=config.name,
        frame=frame,
        origin=LatLon(frame.origin_lat_deg, frame.origin_lon_deg, config.ground_alt_amsl_m),
        area=area,
        depots=depots,
        drop_points=drops,
        vehicle_models={m.name: m for m in config.vehicle_models},
        zones=tuple(zones),
        sidewalk_lines=tuple(lines),
        fleet=config.fleet,
        buffer_m=config.buffer_m,
        cruise_layers_m=config.cruise_layers_m,
    )
    kinds = [d.kind for d in drops.values()]
    stats = {
        "zones": len(zones),
        "sidewalk_lines": len(lines),
        "sidewalk_m": round(float(env.network.length)),
        "doorsteps": kinds.count("doorstep"),
        "lockers": kinds.count("locker"),
        "landing_spots": kinds.count("landing_spot"),
        "addresses_seen": len(data.addresses),
    }
    return ImportResult(site, zone_props, drop_props, stats)


def import_osm(
    pbf_path: str | Path,
    out_folder: str | Path,
    config: ImportConfig = HELSINKI_DEMO,
    progress: Progress | None = None,
) -> ImportResult:
    """Build the site, write it to `out_folder` and load it back (so it is known to validate)."""
    result = build_site(pbf_path, config, progress)
    report: Progress = progress or _quiet
    report("writing", 0, 1)
    folder = save_site(
        result.site,
        out_folder,
        zone_properties=result.zone_properties,
        drop_point_properties=result.drop_point_properties,
        decimals=config.decimals,
    )
    site = load_site(folder)
    report("writing", 1, 1)
    return replace(result, site=site)


# --------------------------------------------------------------------------- pieces


def _quiet(stage: str, done: int, total: int | None) -> None:
    del stage, done, total


def _frame_and_area(data: OsmData, margin_m: float, source: str) -> tuple[LocalFrame, Polygon]:
    """The data's convex hull shrunk by `margin_m`, in a frame centred on it."""
    lat_lon = data.node_lat_lon
    rough = LocalFrame(
        (float(lat_lon[:, 0].min()) + float(lat_lon[:, 0].max())) / 2,
        (float(lat_lon[:, 1].min()) + float(lat_lon[:, 1].max())) / 2,
    )
    hull = shapely.MultiPoint(rough.points_to_local(lat_lon)).convex_hull
    area = hull.buffer(-margin_m, join_style="mitre")
    if not isinstance(area, Polygon) or area.is_empty:
        raise OsmImportError(source, f"the extract is too small for an area margin of {margin_m} m")
    # Re-centre on the area (rounded, so the written origin is exact): least distortion where it matters.
    c_lat, c_lon = rough.to_wgs84(area.centroid.x, area.centroid.y)
    frame = LocalFrame(round(c_lat, 6), round(c_lon, 6))
    ring = rough.points_to_wgs84(np.asarray(area.exterior.coords, dtype=np.float64))
    return frame, Polygon(frame.points_to_local(ring)).simplify(2.0)


def _depots(config: ImportConfig, env: Surroundings, source: str) -> dict[str, Depot]:
    """The configured depots, checked: inside the area, clear of zones, next to the network."""
    depots: dict[str, Depot] = {}
    alt_m = config.ground_alt_amsl_m
    for spec in config.depots:
        x, y = env.frame.to_local(spec.lat_deg, spec.lon_deg)
        pads: list[Pad] = []
        for i in range(spec.pads):
            px = x + (i - (spec.pads - 1) / 2) * spec.pad_spacing_m
            lat, lon = env.frame.to_wgs84(px, y)
            pads.append(Pad(f"{spec.name}-pad-{i + 1}", LatLon(lat, lon, alt_m), (px, y)))
        for label, (px, py) in [(f"depot {spec.name!r}", (x, y)), *((p.pad_id, p.xy_m) for p in pads)]:
            if not env.area.contains(Point(px, py)):
                raise OsmImportError(source, f"{label} lies outside the operating area")
            if not env.can_fly_to(px, py):
                raise OsmImportError(
                    source,
                    f"{label} lies in, within {config.zone_clearance_m} m of, or walled in by no-fly zones",
                )
        reach_m = float(env.node_distance_m(np.array([x, y]))[0])
        if reach_m > config.depot_max_network_m:
            raise OsmImportError(source, f"depot {spec.name!r} is {reach_m:.0f} m from the sidewalk network")
        position = LatLon(spec.lat_deg, spec.lon_deg, alt_m)
        depots[spec.name] = Depot(spec.name, position, (x, y), tuple(pads), spec.chargers)
    return depots


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m planner.osm EXTRACT OUT_FOLDER`: build a site with a progress bar."""
    import argparse

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    parser = argparse.ArgumentParser(
        prog="python -m planner.osm",
        description="Build a site folder from an OSM extract (Helsinki demo config).",
    )
    parser.add_argument("extract", type=Path, help="an .osm.pbf extract")
    parser.add_argument("out", type=Path, help="the site folder to write")
    parser.add_argument("--max-doorsteps", type=int, default=HELSINKI_DEMO.max_doorsteps)
    args = parser.parse_args(argv)
    console = Console()
    config = replace(HELSINKI_DEMO, max_doorsteps=args.max_doorsteps)
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        tasks: dict[str, tuple[Any, int]] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = (bar.add_task(stage, total=total), done)
            tasks[stage] = (tasks[stage][0], done)
            bar.update(tasks[stage][0], completed=done, total=total)

        try:
            result = import_osm(args.extract, args.out, config, report)
        except (PlanningError, OSError) as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True)  # one line, whatever the width
            return 1
        for task_id, done in tasks.values():
            bar.update(task_id, total=max(done, 1), completed=max(done, 1))
    size_kb = sum(p.stat().st_size for p in args.out.iterdir()) / 1024
    stats = ", ".join(f"{k} {v}" for k, v in result.stats.items())
    console.print(f"wrote {args.out} ({size_kb:.0f} KiB): {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
