"""The OSM importer: tag rules, the robot network, zone merging, a synthetic extract end to end,
and the real Helsinki extract (skipped when it is not next to the repository)."""

from __future__ import annotations

import filecmp
import math
import sys
from dataclasses import replace
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pytest
import shapely

from planner._osm_network import largest_component
from planner._osm_read import is_walkable
from planner._osm_zones import ZoneCandidate, build_zones
from planner.errors import OsmImportError
from planner.geo import LocalFrame
from planner.osm import (
    HELSINKI_DEMO,
    QUAD,
    ROBOT,
    DepotSpec,
    ImportConfig,
    ZoneRule,
    build_site,
    import_osm,
    main,
)
from planner.site import FleetEntry, load_site

REPO = Path(__file__).resolve().parents[2]
EXTRACT = REPO.parent / "shared" / "data" / "osm" / "helsinki.osm.pbf"
BUNDLED = REPO / "sitl" / "worlds" / "helsinki"

# --------------------------------------------------------------------------- rules and pieces


def test_zone_rule_matching() -> None:
    rail = ZoneRule({"railway": "rail"}, "railway line", exclude={"tunnel": "*"})
    assert rail.matches({"railway": "rail", "usage": "main"})
    assert not rail.matches({"railway": "rail", "tunnel": "yes"})
    assert not rail.matches({"railway": "tram"})
    military = ZoneRule({"military": "*"}, "military site")
    assert military.matches({"military": "barracks"})
    assert not military.matches({"landuse": "military"})
    square = ZoneRule({"highway": "pedestrian", "area": "yes"}, "crowded pedestrian area")
    assert square.matches({"highway": "pedestrian", "area": "yes", "name": "x"})
    assert not square.matches({"highway": "pedestrian"})
    assert square.tag_text({"highway": "pedestrian", "area": "yes"}) == "highway=pedestrian area=yes"


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "footway", "footway": "sidewalk"}, True),
        ({"highway": "footway", "footway": "crossing"}, True),
        ({"highway": "pedestrian"}, True),
        ({"highway": "pedestrian", "area": "yes"}, True),
        ({"highway": "path"}, True),
        ({"highway": "cycleway", "foot": "designated"}, True),
        ({"highway": "cycleway"}, False),
        ({"highway": "steps"}, False),
        ({"highway": "corridor"}, False),
        ({"highway": "footway", "indoor": "yes"}, False),
        ({"highway": "footway", "access": "private"}, False),
        ({"highway": "footway", "access": "permissive"}, True),
        ({"highway": "footway", "foot": "no"}, False),
        ({"highway": "residential", "sidewalk": "both"}, True),
        ({"highway": "residential", "sidewalk": "separate"}, False),
        ({"highway": "primary"}, False),
        ({"building": "yes"}, False),
    ],
)
def test_walkable_ways(tags: dict[str, str], walkable: bool) -> None:
    assert is_walkable(tags) is walkable


def test_largest_component_keeps_the_longest_connected_piece() -> None:
    a = np.array([[0.0, 0.0], [100.0, 0.0]])
    b = np.array([[100.0, 0.0], [100.0, 100.0]])
    c = np.array([[500.0, 500.0], [560.0, 500.0]])  # isolated, shorter than a + b
    d = np.array([[0.0, 0.0], [-50.0, 0.0]])
    kept = largest_component([a, b, c, d])
    assert len(kept) == 3
    assert not any(np.array_equal(k, c) for k in kept)


def _candidate(
    osm_id: str,
    tag: str,
    shape: shapely.Polygon,
    *,
    name: str = "",
    floor_m: float = 0.0,
    circle: tuple[float, float, float] | None = None,
) -> ZoneCandidate:
    return ZoneCandidate(osm_id, tag, tag.split("=")[1], name, shape, floor_m, math.inf, circle)


def test_build_zones_merges_overlaps_and_keeps_every_reason() -> None:
    area = shapely.box(-1000, -1000, 1000, 1000)
    school = _candidate("way/1", "amenity=school", shapely.box(0, 0, 100, 100), name="Koulu")
    office = _candidate(
        "node/2", "office=government", shapely.Point(120, 50).buffer(40), circle=(120.0, 50.0, 40.0)
    )
    lone = _candidate(
        "node/3", "amenity=hospital", shapely.Point(-500, -500).buffer(60), circle=(-500.0, -500.0, 60.0)
    )
    high = _candidate("way/4", "place=square", shapely.box(50, 50, 80, 80), floor_m=30.0)
    zones, props = build_zones([school, office, lone, high], area, simplify_m=1.0)
    by_tag = {props[z.zone_id]["osm_tag"]: z for z in zones}
    merged = by_tag["amenity=school; office=government"]
    assert merged.zone_id == "amenity-school-1"  # named after the member covering most of it
    assert "school 'Koulu' (amenity=school)" in merged.reason
    assert "(office=government)" in merged.reason
    assert merged.circle is None
    assert merged.shape.contains(shapely.Point(150, 50))
    assert props[merged.zone_id]["osm_ids"] == "node/2,way/1"
    hospital = by_tag["amenity=hospital"]
    assert hospital.circle == pytest.approx((-500, -500, 60))
    # A different altitude band is never merged into the ground-up zones.
    square = by_tag["place=square"]
    assert square.floor_m == 30.0
    assert len(zones) == 3
    assert len({z.zone_id for z in zones}) == 3


def test_build_zones_drops_zones_far_outside_the_area() -> None:
    area = shapely.box(0, 0, 100, 100)
    far = _candidate(
        "node/1", "amenity=hospital", shapely.Point(900, 900).buffer(50), circle=(900.0, 900.0, 50.0)
    )
    assert build_zones([far], area, simplify_m=1.0) == ([], {})


# --------------------------------------------------------------------------- a synthetic extract

FRAME = LocalFrame(60.0, 25.0)


class OsmWriter:
    """A tiny OSM XML writer for test extracts laid out in local metres."""

    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.ways: list[str] = []
        self.next_id = 1
        self.at: dict[tuple[float, float], int] = {}

    def node(self, x: float, y: float, tags: dict[str, str] | None = None) -> int:
        if tags is None and (x, y) in self.at:
            return self.at[(x, y)]
        node_id = self.next_id
        self.next_id += 1
        lat, lon = FRAME.to_wgs84(x, y)
        body = "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in (tags or {}).items())
        self.nodes.append(f'<node id="{node_id}" version="1" lat="{lat:.8f}" lon="{lon:.8f}">{body}</node>')
        if tags is None:
            self.at[(x, y)] = node_id
        return node_id

    def way(self, points: list[tuple[float, float]], tags: dict[str, str], closed: bool = False) -> None:
        refs = [self.node(x, y) for x, y in points]
        if closed:
            refs.append(refs[0])
        way_id = self.next_id
        self.next_id += 1
        body = "".join(f'<nd ref="{r}"/>' for r in refs)
        body += "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
        self.ways.append(f'<way id="{way_id}" version="1">{body}</way>')

    def write(self, path: Path) -> Path:
        text = "\n".join(['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">'])
        path.write_text(text + "\n" + "\n".join(self.nodes + self.ways) + "\n</osm>\n", encoding="utf-8")
        return path


@pytest.fixture
def town(tmp_path: Path) -> Path:
    """A 600 m footway grid (100 m blocks) inside a 1 km square of data, with features."""
    pytest.importorskip("osmium", reason="pyosmium (the 'osm' extra) is not installed")
    osm = OsmWriter()
    steps = range(-300, 301, 100)
    for v in steps:
        osm.way([(x, v) for x in steps], {"highway": "footway", "footway": "sidewalk"})
        osm.way([(v, y) for y in steps], {"highway": "footway"})
    for corner in [(-500, -500), (500, -500), (500, 500), (-500, 500)]:
        osm.node(*corner)
    osm.way([(300, 300), (400, 400)], {"highway": "steps"})
    osm.way([(-300, 300), (-400, 400)], {"highway": "footway", "access": "private"})
    osm.way([(380, -420), (420, -380)], {"highway": "footway"})  # an island: dropped
    osm.way(
        [(110, 110), (190, 110), (190, 190), (110, 190)], {"amenity": "school", "name": "Koulu"}, closed=True
    )
    osm.node(150, 250, {"office": "government", "name": "Virasto"})
    osm.node(-200, -200, {"amenity": "hospital", "name": "Sairaala"})
    osm.way([(-450, 0), (-350, 0)], {"railway": "rail"})
    osm.way([(0, 420), (100, 420)], {"railway": "rail", "tunnel": "yes"})
    osm.way(
        [(-95, 150), (-5, 150), (-5, 245), (-95, 245)],
        {"leisure": "park", "name": "Testipuisto"},
        closed=True,
    )
    osm.node(50, -104, {"amenity": "vending_machine", "vending": "parcel_pickup", "name": "Box"})
    for i, (x, y) in enumerate([(-250, 5), (-150, -95), (50, 95), (250, -5), (-195, -205), (60, -295)]):
        osm.node(x, y, {"addr:street": "Testikatu", "addr:housenumber": str(i + 1)})
    building = [(-140.0, 20.0), (-110.0, 20.0), (-110.0, 60.0), (-140.0, 60.0)]
    osm.way(building, {"building": "yes", "addr:street": "Koekatu", "addr:housenumber": "7"}, closed=True)
    return osm.write(tmp_path / "town.osm")


def town_config(**kw: object) -> ImportConfig:
    lat, lon = FRAME.to_wgs84(200.0, -300.0)
    config = ImportConfig(
        name="testtown",
        depots=(DepotSpec("hub", lat, lon, pads=2, chargers=3),),
        vehicle_models=(QUAD, ROBOT),
        fleet=(FleetEntry("q1", QUAD.name, "hub"), FleetEntry("r1", ROBOT.name, "hub")),
        ground_alt_amsl_m=5.0,
        max_doorsteps=50,
        lockers_per_depot=2,
    )
    return replace(config, **kw)  # type: ignore[arg-type]


def test_synthetic_extract_end_to_end(town: Path, tmp_path: Path) -> None:
    stages: list[str] = []
    result = import_osm(town, tmp_path / "site", town_config(), lambda s, _d, _t: stages.append(s))
    assert {"reading OSM", "zones", "sidewalks", "drop points", "writing"} <= set(stages)
    site = result.site
    assert site.source == tmp_path / "site"  # what was written, read back
    assert site.area.bounds == pytest.approx((-450, -450, 450, 450), abs=3)

    # Network: the grid only (no steps, no private way, no island).
    network = shapely.MultiLineString([ln.tolist() for ln in site.sidewalk_lines])
    assert network.length == pytest.approx(14 * 600, rel=0.01)
    assert network.distance(shapely.Point(350, 350)) > 40  # steps
    assert network.distance(shapely.Point(-350, 350)) > 40  # private
    assert network.distance(shapely.Point(400, -400)) > 40  # island
    assert all(len(ln) >= 2 for ln in site.sidewalk_lines)
    route = site.sidewalks.route((-300, -300), (300, 300))
    assert route.length_m == pytest.approx(1200, abs=1)

    # Zones: reasons name the tags; the lone hospital node stays a circle; the tunnel is ignored.
    reasons = {z.zone_id: z.reason for z in site.zones}
    assert any("amenity=school" in r and "office=government" in r for r in reasons.values())
    hospital = next(z for z in site.zones if "amenity=hospital" in z.reason)
    assert hospital.circle == pytest.approx((-200, -200, 120), abs=0.05)
    assert "Sairaala" in hospital.reason
    rail = next(z for z in site.zones if "railway=rail" in z.reason)
    assert rail.shape.contains(shapely.Point(-400, 10))
    assert not any(z.shape.contains(shapely.Point(50, 420)) for z in site.zones)
    zone_text = (tmp_path / "site" / "zones.geojson").read_text()
    assert '"osm_tag":"amenity=hospital"' in zone_text

    # Depot and pads as configured.
    hub = site.depots["hub"]
    assert hub.xy_m == pytest.approx((200, -300), abs=0.1)
    assert [p.pad_id for p in hub.pads] == ["hub-pad-1", "hub-pad-2"]
    assert hub.pads[1].xy_m[0] - hub.pads[0].xy_m[0] == pytest.approx(6.0, abs=0.1)
    assert hub.position.alt_amsl_m == 5.0

    # Drop points: all addresses, the building's doorstep on its street side, lockers and a park spot.
    drops = site.drop_points
    doorsteps = {n: d for n, d in drops.items() if d.kind == "doorstep"}
    assert set(doorsteps) == {f"testikatu-{i}" for i in range(1, 7)} | {"koekatu-7"}
    in_hospital = doorsteps["testikatu-5"]
    assert not in_hospital.drone_ok
    assert in_hospital.robot_ok
    assert doorsteps["testikatu-1"].drone_ok
    assert doorsteps["testikatu-1"].address == "Testikatu 1"
    koekatu = doorsteps["koekatu-7"]
    # The east wall is 10 m from the x = -100 footway: the doorstep is 1.5 m out from it.
    assert koekatu.xy_m[0] == pytest.approx(-108.5, abs=0.2)
    assert 20 <= koekatu.xy_m[1] <= 60
    lockers = [d for d in drops.values() if d.kind == "locker"]
    assert {d.name for d in lockers} >= {"locker-box", "locker-hub-1", "locker-hub-2"}
    spots = [d for d in drops.values() if d.kind == "landing_spot"]
    assert [s.name for s in spots] == ["spot-testipuisto"]
    assert result.stats["doorsteps"] == 7


def test_doorstep_subset_is_spread_and_deterministic(town: Path) -> None:
    first = build_site(town, town_config(max_doorsteps=3, doorstep_cell_m=150.0)).site
    second = build_site(town, town_config(max_doorsteps=3, doorstep_cell_m=150.0)).site
    names = sorted(n for n, d in first.drop_points.items() if d.kind == "doorstep")
    assert len(names) == 3
    assert names == sorted(n for n, d in second.drop_points.items() if d.kind == "doorstep")
    xy = np.array([first.drop_points[n].xy_m for n in names])
    cells = {(int(x // 150), int(y // 150)) for x, y in xy}
    assert len(cells) == 3  # one per cell before any cell gets a second


def test_custom_zone_rules(town: Path) -> None:
    rules = (ZoneRule({"leisure": "park"}, "park", buffer_m=0.0, ceiling_m=60.0),)
    site = build_site(town, town_config(zone_rules=rules, max_landing_spots=0)).site
    assert len(site.zones) == 1
    park = site.zones[0]
    assert park.reason == "park 'Testipuisto' (leisure=park)"
    assert park.ceiling_m == 60.0
    assert park.shape.area == pytest.approx(90 * 95, rel=0.02)


def test_depot_in_a_zone_is_refused(town: Path) -> None:
    lat, lon = FRAME.to_wgs84(-200.0, -180.0)
    config = town_config(depots=(DepotSpec("bad", lat, lon),))
    with pytest.raises(OsmImportError, match=r"'bad'.*no-fly") as err:
        build_site(town, config)
    assert err.value.source == str(town)


def test_depot_far_from_the_network_is_refused(town: Path) -> None:
    lat, lon = FRAME.to_wgs84(-250.0, 250.0)
    with pytest.raises(OsmImportError, match="50 m from the sidewalk network"):
        build_site(town, town_config(depots=(DepotSpec("lost", lat, lon, pads=1),)))


def test_missing_extract(tmp_path: Path) -> None:
    with pytest.raises(OsmImportError, match="no such file"):
        build_site(tmp_path / "nothing.osm.pbf", town_config())


def test_not_an_extract(tmp_path: Path) -> None:
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(b"\x00\x01 definitely not protobuf" * 10)
    with pytest.raises(OsmImportError):
        build_site(junk, town_config())


def test_without_pyosmium(town: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "osmium", None)
    with pytest.raises(OsmImportError, match=r"fleetctl\[osm\]"):
        build_site(town, town_config())


@pytest.mark.parametrize("columns", ["20", "200"])
def test_cli_reports_errors_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, columns: str) -> None:
    monkeypatch.setenv("COLUMNS", columns)  # a narrow terminal must not break the message
    missing = tmp_path / "missing.osm.pbf"
    assert main([str(missing), str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "no such file" in out
    assert str(missing) in out


# --------------------------------------------------------------------------- the real extract


@pytest.fixture(scope="module")
def extract() -> Path:
    if not EXTRACT.is_file():
        reason = f"OSM extract not found at {EXTRACT} (expected next to the repository in ../shared)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return EXTRACT


def test_helsinki_import_matches_the_bundled_site(extract: Path, tmp_path: Path) -> None:
    assert main([str(extract), str(tmp_path / "helsinki")]) == 0
    site = load_site(tmp_path / "helsinki")
    assert len(site.zones) >= 10
    assert sum(d.kind == "doorstep" for d in site.drop_points.values()) == HELSINKI_DEMO.max_doorsteps
    names = ["site.toml", "area.geojson", "zones.geojson", "drop_points.geojson", "sidewalks.geojson"]
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "helsinki", BUNDLED, names, shallow=False)
    stale = mismatch + errors
    assert not stale, f"the bundled site is stale ({stale} differ): run `python tools/build_demo_site.py`"
    assert match == names
