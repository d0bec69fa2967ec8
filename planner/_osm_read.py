"""One pass over an OSM extract with pyosmium, keeping only what a site needs, as plain data.

pyosmium's objects are only valid inside the loop, so everything is copied out into numpy
arrays and small dataclasses here; nothing outside this module touches osmium.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from planner.errors import OsmImportError
from planner.geo import FloatArray

# Values of `highway` robots may use; steps, corridors (indoors), platforms and elevators not.
WALK_HIGHWAYS = frozenset({"footway", "pedestrian", "path", "living_street", "crossing"})
FOOT_OK = frozenset({"yes", "designated", "permissive"})
ACCESS_OK = frozenset({"yes", "permissive", "designated", "public", "destination"})
ROAD_SIDEWALK = frozenset({"both", "left", "right", "yes"})
PARK_TAGS = (("leisure", "park"), ("leisure", "garden"), ("landuse", "grass"))


@dataclass(frozen=True)
class Place:
    """An addressed or named point; `outline` is the (lat, lon) ring of its building or area."""

    osm_id: str
    label: str
    full: str
    lat_deg: float
    lon_deg: float
    outline: FloatArray | None = None


@dataclass(frozen=True)
class TaggedGeometry:
    """A feature that may become a zone: a node, an open way, or an area's polygons."""

    osm_id: str
    tags: Mapping[str, str]
    kind: Literal["node", "line", "area"]
    lat_lon: FloatArray | None = None  # node: (1, 2); line: (N, 2)
    polygons: list[tuple[FloatArray, list[FloatArray]]] = field(default_factory=list)


@dataclass
class OsmData:
    node_lat_lon: FloatArray
    walk_refs: list[list[int]] = field(default_factory=list)
    walk_lat_lon: list[FloatArray] = field(default_factory=list)
    addresses: list[Place] = field(default_factory=list)
    lockers: list[Place] = field(default_factory=list)
    parks: list[Place] = field(default_factory=list)
    features: list[TaggedGeometry] = field(default_factory=list)


def is_walkable(tags: Mapping[str, str]) -> bool:
    highway = tags.get("highway", "")
    # Indoors there is no GNSS; an area's outline is only walkable round a pedestrian square.
    if tags.get("indoor") == "yes" or (tags.get("area") == "yes" and highway != "pedestrian"):
        return False
    access = tags.get("access")
    foot = tags.get("foot")
    if foot in ("no", "private") or (access is not None and access not in ACCESS_OK and foot not in FOOT_OK):
        return False
    if highway in WALK_HIGHWAYS or tags.get("footway") in ("sidewalk", "crossing"):
        return True
    if highway == "cycleway":
        return foot in FOOT_OK
    # A road tagged with a sidewalk it does not map separately: its centreline stands in.
    return bool(highway) and tags.get("sidewalk") in ROAD_SIDEWALK


def _address(tags: Mapping[str, str]) -> tuple[str, str] | None:
    street, number = tags.get("addr:street"), tags.get("addr:housenumber")
    if not street or not number:
        return None
    label = f"{street} {number}"
    tail = " ".join(t for t in (tags.get("addr:postcode"), tags.get("addr:city")) if t)
    return label, f"{label}, {tail}" if tail else label


def _ring(nodes: Any) -> FloatArray:
    return np.array([(n.lat, n.lon) for n in nodes], dtype=np.float64)


def read_osm(
    path: Path,
    keep_feature: Callable[[Mapping[str, str]], bool],
    report: Callable[[str, int, int | None], None],
) -> OsmData:
    try:
        import osmium
    except ImportError as exc:
        raise OsmImportError(
            str(path), "pyosmium is not installed: install the 'osm' extra (pip install 'fleetctl[osm]')"
        ) from exc
    if not path.is_file():
        raise OsmImportError(str(path), "no such file")
    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        box = reader.header().box()
        reader.close()
    except RuntimeError as exc:
        raise OsmImportError(str(path), f"not a readable OSM file: {exc}") from exc
    bounds = None
    if box.valid():
        bounds = (box.bottom_left.lat, box.bottom_left.lon, box.top_right.lat, box.top_right.lon)

    lat_lon: list[tuple[float, float]] = []
    data = OsmData(node_lat_lon=np.empty((0, 2)))
    seen = 0
    try:
        processor: Iterable[Any] = osmium.FileProcessor(str(path)).with_areas()
        for obj in processor:
            seen += 1
            if seen % 2000 == 0:
                report("reading OSM", seen, None)
            if obj.is_node():
                _node(obj, data, lat_lon, bounds, keep_feature)
            elif obj.is_way():
                _way(obj, data, keep_feature)
            elif obj.is_area():
                _area(obj, data, keep_feature)
    except RuntimeError as exc:
        raise OsmImportError(str(path), f"cannot read the extract: {exc}") from exc
    report("reading OSM", seen, seen)
    data.node_lat_lon = np.array(lat_lon, dtype=np.float64).reshape(-1, 2)
    return data


def _node(
    obj: Any,
    data: OsmData,
    lat_lon: list[tuple[float, float]],
    bounds: tuple[float, float, float, float] | None,
    keep_feature: Callable[[Mapping[str, str]], bool],
) -> None:
    if not obj.location.valid():
        return
    lat, lon = obj.location.lat, obj.location.lon
    if bounds is None or (bounds[0] <= lat <= bounds[2] and bounds[1] <= lon <= bounds[3]):
        lat_lon.append((lat, lon))
    if not len(obj.tags):
        return
    tags = {t.k: t.v for t in obj.tags}
    osm_id = f"node/{obj.id}"
    addr = _address(tags)
    if addr is not None:
        data.addresses.append(Place(osm_id, addr[0], addr[1], lat, lon))
    if tags.get("amenity") == "parcel_locker" or "parcel_pickup" in tags.get("vending", ""):
        label = tags.get("name") or tags.get("operator") or ""
        full = addr[1] if addr else (label or "parcel locker")
        data.lockers.append(Place(osm_id, label, full, lat, lon))
    if keep_feature(tags):
        data.features.append(TaggedGeometry(osm_id, tags, "node", np.array([[lat, lon]])))


def _way(obj: Any, data: OsmData, keep_feature: Callable[[Mapping[str, str]], bool]) -> None:
    tags = {t.k: t.v for t in obj.tags}
    if not tags:
        return
    walkable = is_walkable(tags)
    wanted = keep_feature(tags) and not obj.is_closed()
    if not (walkable or wanted):
        return
    refs = [n.ref for n in obj.nodes]
    coords = np.array(
        [(n.lat, n.lon) if n.location.valid() else (math.nan, math.nan) for n in obj.nodes], dtype=np.float64
    )
    if walkable and len(refs) >= 2:
        data.walk_refs.append(refs)
        data.walk_lat_lon.append(coords)
    if wanted:
        data.features.append(TaggedGeometry(f"way/{obj.id}", tags, "line", coords[~np.isnan(coords[:, 0])]))


def _area(obj: Any, data: OsmData, keep_feature: Callable[[Mapping[str, str]], bool]) -> None:
    tags = {t.k: t.v for t in obj.tags}
    if not tags:
        return
    osm_id = f"{'way' if obj.from_way() else 'relation'}/{obj.orig_id()}"
    addr = _address(tags) if "building" in tags else None
    is_park = any(tags.get(k) == v for k, v in PARK_TAGS)
    wanted = keep_feature(tags)
    if addr is None and not is_park and not wanted:
        return
    polygons = [
        (_ring(outer), [_ring(inner) for inner in obj.inner_rings(outer)]) for outer in obj.outer_rings()
    ]
    if not polygons:
        return
    biggest = max(polygons, key=lambda p: len(p[0]))[0]
    lat, lon = float(biggest[:, 0].mean()), float(biggest[:, 1].mean())
    if addr is not None:
        data.addresses.append(Place(osm_id, addr[0], addr[1], lat, lon, biggest))
    if is_park:
        name = tags.get("name", "")
        data.parks.append(Place(osm_id, name, name or "park", lat, lon, biggest))
    if wanted:
        data.features.append(TaggedGeometry(osm_id, tags, "area", polygons=polygons))


def slug(text: str) -> str:
    """A name fit for ids and the command line: "Pohjoisesplanadi 5 B" -> "pohjoisesplanadi-5-b"."""
    folded = text.lower().translate(str.maketrans("äöåéü", "aoaeu"))
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
