"""Site folders: loading, validation errors that name file and feature, writing, the bundled site."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from planner.errors import SiteError, UnknownPlace
from planner.geo import LocalFrame
from planner.site import Site, load_site, save_site

LAT0, LON0 = 60.17, 24.94
FRAME = LocalFrame(LAT0, LON0)


def ll(x_m: float, y_m: float) -> tuple[float, float]:
    """Local metres -> (lat, lon) around the test origin."""
    return FRAME.to_wgs84(x_m, y_m)


def lonlat(x_m: float, y_m: float) -> list[float]:
    lat, lon = ll(x_m, y_m)
    return [lon, lat]


def feature(props: dict[str, Any], gtype: str, coords: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": props, "geometry": {"type": gtype, "coordinates": coords}}


def ring(*xy: tuple[float, float]) -> list[list[float]]:
    pts = [lonlat(x, y) for x, y in xy]
    return [*pts, pts[0]]


def base_parts() -> dict[str, Any]:
    """A small valid site as plain data: 1 km square area, one depot, two zones, two drop points."""
    d_lat, d_lon = ll(-300, -300)
    p1, p2 = ll(-306, -300), ll(-294, -300)
    toml = {
        "name": "testville",
        "buffer_m": 8.0,
        "cruise_layers_m": [60.0, 40.0],
        "origin": {"lat_deg": LAT0, "lon_deg": LON0, "ground_alt_amsl_m": 15.0},
        "depots": [
            {
                "name": "north",
                "lat_deg": d_lat,
                "lon_deg": d_lon,
                "chargers": 2,
                "pads": [
                    {"pad_id": "n1", "lat_deg": p1[0], "lon_deg": p1[1]},
                    {"pad_id": "n2", "lat_deg": p2[0], "lon_deg": p2[1]},
                ],
            }
        ],
        "vehicle_models": [
            {
                "name": "quad",
                "kind": "drone",
                "max_payload_kg": 2.0,
                "cruise_speed_m_s": 10.0,
                "battery_wh": 400.0,
                "empty_mass_kg": 5.0,
                "hover_power_w": 500.0,
                "cruise_power_w": 450.0,
            },
            {
                "name": "bot",
                "kind": "robot",
                "max_payload_kg": 8.0,
                "cruise_speed_m_s": 1.5,
                "battery_wh": 900.0,
                "empty_mass_kg": 30.0,
                "rolling_power_w": 80.0,
            },
        ],
        "fleet": [
            {"vehicle_id": "q1", "model": "quad", "depot": "north"},
            {"vehicle_id": "r1", "model": "bot", "depot": "north"},
        ],
    }
    area = [feature({}, "Polygon", [ring((-500, -500), (500, -500), (500, 500), (-500, 500))])]
    zones = [
        feature(
            {
                "id": "school",
                "reason": "school (amenity=school)",
                "osm_tag": "amenity=school",
                "osm_id": "way/1",
            },
            "Polygon",
            [ring((0, 0), (100, 0), (100, 100), (0, 100))],
        ),
        feature(
            {
                "id": "event",
                "reason": "concert",
                "radius_m": 50.0,
                "floor_m": 0.0,
                "ceiling_m": 120.0,
                "active_from": "2025-06-01T18:00:00+03:00",
                "active_until": "2025-06-01T23:00:00Z",
            },
            "Point",
            lonlat(-200, 200),
        ),
    ]
    drops = [
        feature(
            {
                "name": "door-1",
                "kind": "doorstep",
                "address": "Testikatu 1",
                "drone_ok": True,
                "robot_ok": True,
            },
            "Point",
            lonlat(300, -300),
        ),
        feature({"name": "locker-1", "kind": "locker", "robot_ok": False}, "Point", lonlat(300, 300)),
    ]
    walks = [
        feature({}, "LineString", [lonlat(-300, -300), lonlat(0, -300), lonlat(300, -300)]),
        feature({"osm_id": "way/9"}, "MultiLineString", [[lonlat(300, -300), lonlat(300, 300)]]),
    ]
    return {"toml": toml, "area": area, "zones": zones, "drop_points": drops, "sidewalks": walks}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def to_toml(data: dict[str, Any]) -> str:
    out = [
        f"{k} = {toml_value(v)}"
        for k, v in data.items()
        if not isinstance(v, dict | list) or k == "cruise_layers_m"
    ]
    for key, value in data.items():
        if isinstance(value, dict):
            out += [f"[{key}]", *(f"{k} = {toml_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and key != "cruise_layers_m":
            for item in value:
                out += [f"[[{key}]]", *(f"{k} = {toml_value(v)}" for k, v in item.items())]
    return "\n".join(out) + "\n"


def write_site(folder: Path, parts: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "site.toml").write_text(to_toml(parts["toml"]), encoding="utf-8")
    for key in ("area", "zones", "drop_points", "sidewalks"):
        collection = {"type": "FeatureCollection", "features": parts[key]}
        (folder / f"{key}.geojson").write_text(json.dumps(collection), encoding="utf-8")
    return folder


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    return write_site(tmp_path / "site", base_parts())


# --------------------------------------------------------------------------- loading


def test_loads_a_valid_site(site_dir: Path) -> None:
    site = load_site(site_dir)
    assert site.name == "testville"
    assert site.origin.alt_amsl_m == 15.0
    assert site.buffer_m == 8.0
    assert site.cruise_layers_m == (40.0, 60.0)  # sorted
    assert site.area.area == pytest.approx(1_000_000, rel=1e-3)
    depot = site.depots["north"]
    assert depot.xy_m == pytest.approx((-300, -300), abs=0.01)
    assert depot.chargers == 2
    assert [p.pad_id for p in depot.pads] == ["n1", "n2"]
    assert depot.pads[0].xy_m == pytest.approx((-306, -300), abs=0.01)
    assert depot.pads[0].position.alt_amsl_m == 15.0
    door = site.drop_points["door-1"]
    assert (door.kind, door.address, door.drone_ok, door.robot_ok) == ("doorstep", "Testikatu 1", True, True)
    locker = site.drop_points["locker-1"]
    assert (locker.drone_ok, locker.robot_ok, locker.address) == (True, False, "")
    assert site.vehicle_models["quad"].is_drone
    assert not site.vehicle_models["bot"].is_drone
    assert site.vehicle_models["bot"].idle_power_w == 5.0  # dataclass default
    assert [(f.vehicle_id, f.model, f.depot) for f in site.fleet] == [
        ("q1", "quad", "north"),
        ("r1", "bot", "north"),
    ]
    assert len(site.sidewalk_lines) == 2
    assert site.sidewalk_lines[0][-1] == pytest.approx([300, -300], abs=0.01)
    assert site.source == site_dir


def test_zones_polygon_and_timed_circle(site_dir: Path) -> None:
    zones = {z.zone_id: z for z in load_site(site_dir).zones}
    school = zones["school"]
    assert school.reason == "school (amenity=school)"
    assert school.circle is None
    assert math.isinf(school.ceiling_m)
    assert school.shape.area == pytest.approx(10_000, rel=1e-3)
    event = zones["event"]
    assert event.circle == pytest.approx((-200, 200, 50), abs=0.01)
    assert event.ceiling_m == 120.0
    assert event.active_from_s == datetime(2025, 6, 1, 15, 0, tzinfo=UTC).timestamp()
    assert event.active_until_s == datetime(2025, 6, 1, 23, 0, tzinfo=UTC).timestamp()
    assert event.is_active(datetime(2025, 6, 1, 20, 0, tzinfo=UTC).timestamp())
    assert not event.is_active(datetime(2025, 6, 1, 12, 0, tzinfo=UTC).timestamp())


def test_place_lookup_and_unknown_names(site_dir: Path) -> None:
    site = load_site(site_dir)
    assert site.place_xy("north") == site.depots["north"].xy_m
    assert site.place_xy("door-1") == site.drop_points["door-1"].xy_m
    with pytest.raises(UnknownPlace, match="nowhere") as err:
        site.place_xy("nowhere")
    assert "door-1" in str(err.value)
    assert "north" in str(err.value)
    with pytest.raises(UnknownPlace):
        site.vehicle_model("jet")
    with pytest.raises(UnknownPlace):
        site.depot("door-1")
    assert site.drop_point("locker-1").kind == "locker"


def test_area_wgs84_is_the_closed_outer_ring(site_dir: Path) -> None:
    site = load_site(site_dir)
    ring_ll = site.area_wgs84
    assert ring_ll[0] == pytest.approx(ring_ll[-1])
    assert len(ring_ll) == 5
    lats = [p[0] for p in ring_ll]
    assert min(lats) == pytest.approx(ll(0, -500)[0], abs=1e-6)


def test_airspace_and_sidewalks_are_built_once(site_dir: Path) -> None:
    site = load_site(site_dir)
    airspace = site.airspace
    assert airspace is site.airspace
    assert airspace.buffer_m == 8.0
    assert {z.zone_id for z in airspace.zones} == {"school", "event"}
    graph = site.sidewalks
    assert graph is site.sidewalks
    route = graph.route(site.place_xy("north"), site.place_xy("door-1"))
    assert route.length_m == pytest.approx(600, abs=1)
    route = graph.route(site.place_xy("north"), (300, 300))
    assert route.length_m == pytest.approx(1200, abs=1)


def test_site_toml_path_also_loads(site_dir: Path) -> None:
    assert load_site(site_dir / "site.toml").name == "testville"


def test_round_trip_through_save_site(site_dir: Path, tmp_path: Path) -> None:
    first = load_site(site_dir)
    save_site(first, tmp_path / "copy", zone_properties={"school": {"osm_tag": "amenity=school"}})
    second = load_site(tmp_path / "copy")
    assert_same_site(first, second)
    # Writing what was read gives the same files again (a stable format diffs well).
    save_site(second, tmp_path / "copy2", zone_properties={"school": {"osm_tag": "amenity=school"}})
    for name in ("site.toml", "zones.geojson", "drop_points.geojson", "sidewalks.geojson", "area.geojson"):
        assert (tmp_path / "copy" / name).read_text() == (tmp_path / "copy2" / name).read_text()


def assert_same_site(a: Site, b: Site) -> None:
    assert (a.name, a.origin, a.buffer_m, a.cruise_layers_m) == (
        b.name,
        b.origin,
        b.buffer_m,
        b.cruise_layers_m,
    )
    assert a.area.hausdorff_distance(b.area) < 0.05
    assert a.depots.keys() == b.depots.keys()
    for name, depot in a.depots.items():
        other = b.depots[name]
        assert depot.xy_m == pytest.approx(other.xy_m, abs=0.01)
        assert [p.pad_id for p in depot.pads] == [p.pad_id for p in other.pads]
        assert depot.chargers == other.chargers
    assert a.drop_points.keys() == b.drop_points.keys()
    for name, drop in a.drop_points.items():
        twin = b.drop_points[name]
        assert (drop.kind, drop.address, drop.drone_ok, drop.robot_ok) == (
            twin.kind,
            twin.address,
            twin.drone_ok,
            twin.robot_ok,
        )
        assert drop.xy_m == pytest.approx(twin.xy_m, abs=0.01)
    assert a.vehicle_models == b.vehicle_models
    assert a.fleet == b.fleet
    assert [z.zone_id for z in a.zones] == [z.zone_id for z in b.zones]
    for za, zb in zip(a.zones, b.zones, strict=True):
        assert (za.reason, za.floor_m, za.ceiling_m, za.active_from_s, za.active_until_s) == (
            zb.reason,
            zb.floor_m,
            zb.ceiling_m,
            zb.active_from_s,
            zb.active_until_s,
        )
        assert za.shape.hausdorff_distance(zb.shape) < 0.05
        assert (za.circle is None) == (zb.circle is None)
    assert len(a.sidewalk_lines) == len(b.sidewalk_lines)
    for la, lb in zip(a.sidewalk_lines, b.sidewalk_lines, strict=True):
        np.testing.assert_allclose(la, lb, atol=0.01)


# --------------------------------------------------------------------------- validation

Mutation = Callable[[dict[str, Any]], None]


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def apply(parts: dict[str, Any]) -> None:
        target = parts
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return apply


def _drop_key(path: tuple[Any, ...]) -> Mutation:
    def apply(parts: dict[str, Any]) -> None:
        target = parts
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return apply


def _append(key: str, item: Any) -> Mutation:
    return lambda parts: parts[key].append(item)


def _all(*mutations: Mutation) -> Mutation:
    def apply(parts: dict[str, Any]) -> None:
        for mutate in mutations:
            mutate(parts)

    return apply


FAR_DEPOT = ll(800, 0)
BAD_CASES: dict[str, tuple[Mutation, str, str, str]] = {
    # name: (mutation, file, feature substring, message substring)
    "depot latitude out of range": (
        _set(("toml", "depots", 0, "lat_deg"), 95.0),
        "site.toml",
        "depot 'north'",
        "latitude",
    ),
    "depot outside area": (
        _all(
            _set(("toml", "depots", 0, "lat_deg"), FAR_DEPOT[0]),
            _set(("toml", "depots", 0, "lon_deg"), FAR_DEPOT[1]),
        ),
        "site.toml",
        "depot 'north'",
        "outside the operating area",
    ),
    "duplicate depot": (
        lambda p: p["toml"]["depots"].append(dict(p["toml"]["depots"][0], pads=[])),
        "site.toml",
        "depot 'north'",
        "duplicate depot name",
    ),
    "negative chargers": (
        _set(("toml", "depots", 0, "chargers"), -1),
        "site.toml",
        "depot 'north'",
        "chargers",
    ),
    "duplicate pad id": (
        _set(("toml", "depots", 0, "pads", 1, "pad_id"), "n1"),
        "site.toml",
        "pad 'n1'",
        "duplicate pad id",
    ),
    "unknown model in fleet": (
        _set(("toml", "fleet", 0, "model"), "jet"),
        "site.toml",
        "fleet vehicle 'q1'",
        "unknown model 'jet'",
    ),
    "unknown depot in fleet": (
        _set(("toml", "fleet", 1, "depot"), "south"),
        "site.toml",
        "fleet vehicle 'r1'",
        "unknown depot 'south'",
    ),
    "duplicate vehicle id": (
        _set(("toml", "fleet", 1, "vehicle_id"), "q1"),
        "site.toml",
        "fleet vehicle 'q1'",
        "duplicate vehicle_id",
    ),
    "drone at a depot without pads": (
        _set(("toml", "depots", 0, "pads"), []),
        "site.toml",
        "fleet vehicle 'q1'",
        "no pads",
    ),
    "misspelt model key": (
        _set(("toml", "vehicle_models", 0, "cruise_speed_ms"), 10.0),
        "site.toml",
        "vehicle model 'quad'",
        "cruise_speed_ms",
    ),
    "negative payload": (
        _set(("toml", "vehicle_models", 1, "max_payload_kg"), -2.0),
        "site.toml",
        "vehicle model 'bot'",
        "max_payload_kg",
    ),
    "drone without hover power": (
        _drop_key(("toml", "vehicle_models", 0, "hover_power_w")),
        "site.toml",
        "vehicle model 'quad'",
        "hover_power_w",
    ),
    "missing model field": (
        _drop_key(("toml", "vehicle_models", 1, "battery_wh")),
        "site.toml",
        "vehicle model 'bot'",
        "battery_wh",
    ),
    "negative buffer": (_set(("toml", "buffer_m"), -5.0), "site.toml", "top level", "buffer_m"),
    "string cruise layer": (
        _set(("toml", "cruise_layers_m"), ["high"]),
        "site.toml",
        "cruise_layers_m",
        "numbers",
    ),
    "origin latitude": (_set(("toml", "origin", "lat_deg"), -91.0), "site.toml", "origin", "latitude"),
    "self-intersecting zone": (
        _append(
            "zones",
            feature({"id": "bow", "reason": "x"}, "Polygon", [ring((0, 0), (50, 50), (50, 0), (0, 50))]),
        ),
        "zones.geojson",
        "'bow'",
        "invalid polygon",
    ),
    "negative radius": (
        _set(("zones", 1, "properties", "radius_m"), -10.0),
        "zones.geojson",
        "'event'",
        "radius_m",
    ),
    "ceiling below floor": (
        _set(("zones", 1, "properties", "floor_m"), 200.0),
        "zones.geojson",
        "'event'",
        "ceiling_m",
    ),
    "naive zone time": (
        _set(("zones", 1, "properties", "active_from"), "2025-06-01T18:00:00"),
        "zones.geojson",
        "'event'",
        "UTC offset",
    ),
    "window ends first": (
        _set(("zones", 1, "properties", "active_until"), "2025-06-01T10:00:00Z"),
        "zones.geojson",
        "'event'",
        "active_until",
    ),
    "duplicate zone id": (
        _set(("zones", 1, "properties", "id"), "school"),
        "zones.geojson",
        "'school'",
        "duplicate zone id",
    ),
    "zone as a line": (
        _append("zones", feature({"id": "ln", "reason": "x"}, "LineString", [lonlat(0, 0), lonlat(10, 0)])),
        "zones.geojson",
        "'ln'",
        "Polygon or a Point",
    ),
    "misspelt zone key": (
        _set(("zones", 0, "properties", "celing_m"), 50.0),
        "zones.geojson",
        "'school'",
        "celing_m",
    ),
    "drop point outside area": (
        _set(("drop_points", 0, "geometry", "coordinates"), lonlat(900, 0)),
        "drop_points.geojson",
        "'door-1'",
        "outside the operating area",
    ),
    "duplicate drop point": (
        _set(("drop_points", 1, "properties", "name"), "door-1"),
        "drop_points.geojson",
        "'door-1'",
        "duplicate drop point",
    ),
    "drop point named like a depot": (
        _set(("drop_points", 1, "properties", "name"), "north"),
        "drop_points.geojson",
        "'north'",
        "depot name",
    ),
    "bad drop kind": (
        _set(("drop_points", 0, "properties", "kind"), "chimney"),
        "drop_points.geojson",
        "'door-1'",
        "kind must be one of",
    ),
    "nobody can deliver": (
        _set(("drop_points", 1, "properties", "drone_ok"), False),
        "drop_points.geojson",
        "'locker-1'",
        "neither",
    ),
    "drop_ok not a bool": (
        _set(("drop_points", 0, "properties", "drone_ok"), "yes"),
        "drop_points.geojson",
        "'door-1'",
        "true or false",
    ),
    "swapped lat lon in sidewalk": (
        _set(("sidewalks", 0, "geometry", "coordinates"), [[LAT0, LON0], [LAT0 + 0.001, LON0]]),
        "sidewalks.geojson",
        "feature #1",
        "swapped lat/lon",
    ),
    "sidewalk with one point": (
        _set(("sidewalks", 1, "geometry", "coordinates"), [[lonlat(0, 0)]]),
        "sidewalks.geojson",
        "feature #2",
        "at least 2 positions",
    ),
    "longitude out of range": (
        _set(("sidewalks", 0, "geometry", "coordinates"), [[190.0, 60.0], [24.9, 60.1]]),
        "sidewalks.geojson",
        "feature #1",
        "longitude",
    ),
    "area is two features": (
        _append("area", feature({}, "Polygon", [ring((0, 0), (1, 0), (1, 1))])),
        "area.geojson",
        "features",
        "exactly one",
    ),
    "area is a point": (
        _set(("area", 0, "geometry"), {"type": "Point", "coordinates": lonlat(0, 0)}),
        "area.geojson",
        "feature #1",
        "Polygon",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_site_names_file_and_feature(tmp_path: Path, case: str) -> None:
    mutate, file_name, feature_part, message_part = BAD_CASES[case]
    parts = base_parts()
    mutate(parts)
    folder = write_site(tmp_path / "bad", parts)
    with pytest.raises(SiteError) as err:
        load_site(folder)
    assert Path(err.value.path).name == file_name
    assert feature_part in err.value.feature
    assert message_part in err.value.message
    assert file_name in str(err.value)
    assert feature_part in str(err.value)


def test_malformed_toml(site_dir: Path) -> None:
    (site_dir / "site.toml").write_text('name = "x"\n[origin\nlat_deg = 1\n')
    with pytest.raises(SiteError, match="malformed TOML") as err:
        load_site(site_dir)
    assert err.value.path.endswith("site.toml")


def test_malformed_json(site_dir: Path) -> None:
    (site_dir / "zones.geojson").write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(SiteError, match="malformed JSON") as err:
        load_site(site_dir)
    assert err.value.path.endswith("zones.geojson")


def test_not_a_feature_collection(site_dir: Path) -> None:
    (site_dir / "drop_points.geojson").write_text('{"type": "Feature"}')
    with pytest.raises(SiteError, match="FeatureCollection") as err:
        load_site(site_dir)
    assert err.value.path.endswith("drop_points.geojson")


@pytest.mark.parametrize(
    "name", ["site.toml", "area.geojson", "zones.geojson", "drop_points.geojson", "sidewalks.geojson"]
)
def test_missing_file(site_dir: Path, name: str) -> None:
    (site_dir / name).unlink()
    with pytest.raises(SiteError, match="missing") as err:
        load_site(site_dir)
    assert err.value.path.endswith(name)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="not a directory"):
        load_site(tmp_path / "nope")


def test_custom_file_names(tmp_path: Path) -> None:
    parts = base_parts()
    folder = write_site(tmp_path / "s", parts)
    (folder / "zones.geojson").rename(folder / "nofly.json")
    text = (folder / "site.toml").read_text() + '[files]\nzones = "nofly.json"\n'
    (folder / "site.toml").write_text(text)
    assert {z.zone_id for z in load_site(folder).zones} == {"school", "event"}


def test_unknown_top_level_key(site_dir: Path) -> None:
    (site_dir / "site.toml").write_text("colour = 'red'\n" + (site_dir / "site.toml").read_text())
    with pytest.raises(SiteError, match="colour") as err:
        load_site(site_dir)
    assert err.value.feature == "top level"


def test_polygon_with_hole_round_trips(tmp_path: Path) -> None:
    parts = base_parts()
    outer = ring((-450, 300), (-250, 300), (-250, 450), (-450, 450))
    hole = ring((-400, 350), (-300, 350), (-300, 400), (-400, 400))
    parts["zones"].append(feature({"id": "donut", "reason": "ring"}, "Polygon", [outer, hole]))
    site = load_site(write_site(tmp_path / "s", parts))
    donut = next(z for z in site.zones if z.zone_id == "donut")
    assert donut.shape.area == pytest.approx(200 * 150 - 100 * 50, rel=1e-3)
    save_site(site, tmp_path / "again")
    again = next(z for z in load_site(tmp_path / "again").zones if z.zone_id == "donut")
    assert len(again.shape.interiors) == 1
    assert again.shape.hausdorff_distance(donut.shape) < 0.05


def test_point_in_zone_is_seen_by_the_airspace(site_dir: Path) -> None:
    site = load_site(site_dir)
    school = next(z for z in site.zones if z.zone_id == "school")
    assert school.shape.contains(shapely.Point(50, 50))
    assert not school.shape.contains(shapely.Point(*site.place_xy("door-1")))


# --------------------------------------------------------------------------- the bundled site


BUNDLED = Path(__file__).resolve().parents[2] / "sitl" / "worlds" / "helsinki"


@pytest.fixture(scope="module")
def helsinki() -> Site:
    return load_site(BUNDLED)


def test_bundled_site_path_knows_its_sites() -> None:
    from sitl.worlds import bundled_site_path, bundled_sites

    assert "helsinki" in bundled_sites()
    assert bundled_site_path() == BUNDLED
    with pytest.raises(UnknownPlace, match="helsinki"):
        bundled_site_path("atlantis")


def test_bundled_site_is_small_and_attributed() -> None:
    folder = BUNDLED
    assert sum(p.stat().st_size for p in folder.iterdir()) < 1_000_000
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "© OpenStreetMap contributors" in readme
    assert "ODbL 1.0" in readme


def test_bundled_site_contents(helsinki: Site) -> None:
    assert helsinki.name == "helsinki"
    assert set(helsinki.depots) == {"erottaja", "kruununhaka"}
    kinds = [helsinki.vehicle_models[f.model].kind for f in helsinki.fleet]
    assert kinds.count("drone") == 6
    assert kinds.count("robot") == 4
    assert {f.depot for f in helsinki.fleet} == set(helsinki.depots)
    by_kind = {
        k: [d for d in helsinki.drop_points.values() if d.kind == k]
        for k in ("doorstep", "locker", "landing_spot")
    }
    assert len(by_kind["doorstep"]) >= 200
    assert len(by_kind["locker"]) >= 4
    assert len(by_kind["landing_spot"]) >= 2
    reasons = " ".join(z.reason for z in helsinki.zones)
    for tag in ("amenity=school", "office=government", "railway=rail", "place=square"):
        assert tag in reasons


def test_bundled_depots_are_inside_the_area_and_clear_of_zones(helsinki: Site) -> None:
    flyable = helsinki.area
    for depot in helsinki.depots.values():
        for xy in [depot.xy_m, *(p.xy_m for p in depot.pads)]:
            point = shapely.Point(xy)
            assert flyable.contains(point)
            for zone in helsinki.zones:
                assert zone.shape.distance(point) > helsinki.buffer_m, (depot.name, zone.zone_id)


def test_bundled_drone_drop_points_are_clear_of_zones(helsinki: Site) -> None:
    for drop in helsinki.drop_points.values():
        point = shapely.Point(drop.xy_m)
        assert helsinki.area.contains(point)
        if drop.drone_ok:
            assert all(zone.shape.distance(point) > helsinki.buffer_m for zone in helsinki.zones), drop.name


def test_bundled_sidewalks_connect_depots_to_the_robot_drop_points(helsinki: Site) -> None:
    graph = helsinki.sidewalks
    assert graph.n_nodes > 1000
    robot_drops = [d for d in helsinki.drop_points.values() if d.robot_ok]
    assert len(robot_drops) >= 200
    for depot in helsinki.depots.values():
        reached = 0
        for drop in robot_drops:
            route = graph.route(depot.xy_m, drop.xy_m)
            assert route.walk_goal_m <= 30.0
            reached += 1
        assert reached == len(robot_drops)
    # From one depot to the other along the network, not much longer than the straight line.
    a, b = (d.xy_m for d in helsinki.depots.values())
    route = graph.route(a, b)
    assert math.dist(a, b) < route.length_m < 2.0 * math.dist(a, b)


def test_bundled_drones_can_fly_from_each_depot_to_every_drone_drop_point(helsinki: Site) -> None:
    from planner.flight import FlightPlanner

    planner = FlightPlanner(helsinki.airspace)
    drone_drops = [d for d in helsinki.drop_points.values() if d.drone_ok]
    assert len(drone_drops) >= 150
    for depot in helsinki.depots.values():
        for drop in drone_drops:
            path = planner.path(depot.xy_m, drop.xy_m)
            assert path.length_m >= math.dist(depot.xy_m, drop.xy_m) - 1e-6
