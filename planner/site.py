"""A Site: one operating area with its depots, drop points, vehicles, airspace and sidewalks.

On disk a site is a folder::

    site.toml            name, origin, buffer_m, cruise_layers_m, [files], [[depots]],
                         [[vehicle_models]], [[fleet]]
    area.geojson         the operating area: one Polygon
    zones.geojson        no-fly zones: Polygons, or Points with `radius_m` (circles)
    drop_points.geojson  Points: name, kind, address, drone_ok, robot_ok
    sidewalks.geojson    LineStrings / MultiLineStrings the robots may drive along

GeoJSON is WGS84 ([lon, lat]); everything a `Site` hands out is in its local metric frame
(`site.frame`), with WGS84 kept on the named places for the MAVLink edge. Zone properties:
`id`, `reason`, `floor_m`, `ceiling_m` (absent = unlimited), `active_from`/`active_until`
(ISO-8601 with offset, or epoch seconds), `radius_m` for circles, `osm_tag`. Properties whose
key starts with `osm_` or `_` are informational and ignored; any other unknown key is an
error, so a typo cannot silently fall back to a default.

`load_site` validates the whole folder and raises `SiteError(path, feature, message)`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from planner._site_schema import MISSING, Table, check_lat_lon, position, positions
from planner.errors import SiteError, UnknownPlace
from planner.geo import FloatArray, LatLon, LocalFrame
from planner.vehicle_model import VehicleModel

if TYPE_CHECKING:
    from planner.airspace import Airspace, NoFlyZone
    from planner.sidewalk import SidewalkGraph

DropKind = Literal["locker", "landing_spot", "doorstep"]
DROP_KINDS: tuple[DropKind, ...] = ("locker", "landing_spot", "doorstep")
SITE_TOML = "site.toml"
DEFAULT_FILES: Mapping[str, str] = {
    "area": "area.geojson",
    "zones": "zones.geojson",
    "drop_points": "drop_points.geojson",
    "sidewalks": "sidewalks.geojson",
}
# A coordinate this far from the origin is almost always swapped lat/lon or a wrong sign.
MAX_DISTANCE_FROM_ORIGIN_M = 50_000.0
_INFO_PREFIXES = ("osm_", "_")


@dataclass(frozen=True)
class Pad:
    pad_id: str
    position: LatLon
    xy_m: tuple[float, float]


@dataclass(frozen=True)
class Depot:
    name: str
    position: LatLon
    xy_m: tuple[float, float]
    pads: tuple[Pad, ...]
    chargers: int


@dataclass(frozen=True)
class DropPoint:
    name: str
    kind: DropKind
    position: LatLon
    xy_m: tuple[float, float]
    address: str
    drone_ok: bool
    robot_ok: bool


@dataclass(frozen=True)
class FleetEntry:
    vehicle_id: str
    model: str
    depot: str


@dataclass(frozen=True, eq=False)
class Site:
    """Everything the planner knows about one site; all geometry in local metres of `frame`."""

    name: str
    frame: LocalFrame
    origin: LatLon
    area: Polygon
    depots: dict[str, Depot]
    drop_points: dict[str, DropPoint]
    vehicle_models: dict[str, VehicleModel]
    zones: tuple[NoFlyZone, ...]
    sidewalk_lines: tuple[FloatArray, ...]
    fleet: tuple[FleetEntry, ...]
    buffer_m: float = 10.0
    cruise_layers_m: tuple[float, ...] = (40.0,)
    source: Path | None = None

    @property
    def area_wgs84(self) -> list[tuple[float, float]]:
        """The operating area's outer ring as (lat_deg, lon_deg), closed."""
        ring = np.asarray(self.area.exterior.coords, dtype=np.float64)
        return [(float(a), float(b)) for a, b in self.frame.points_to_wgs84(ring)]

    @cached_property
    def airspace(self) -> Airspace:
        """The area, zones and buffer as an `Airspace` (immutable; built on first use)."""
        from planner.airspace import Airspace

        return Airspace(self.area, self.zones, buffer_m=self.buffer_m)

    @cached_property
    def sidewalks(self) -> SidewalkGraph:
        """The robot network, built on first use. Shared: close edges on a `.copy()` of it."""
        from planner.sidewalk import SidewalkGraph

        return SidewalkGraph.from_lines(self.sidewalk_lines)

    def place_xy(self, name: str) -> tuple[float, float]:
        """A depot's or a drop point's local position."""
        if name in self.depots:
            return self.depots[name].xy_m
        if name in self.drop_points:
            return self.drop_points[name].xy_m
        raise UnknownPlace("place", name, [*self.depots, *self.drop_points])

    def depot(self, name: str) -> Depot:
        try:
            return self.depots[name]
        except KeyError:
            raise UnknownPlace("depot", name, list(self.depots)) from None

    def drop_point(self, name: str) -> DropPoint:
        try:
            return self.drop_points[name]
        except KeyError:
            raise UnknownPlace("drop point", name, list(self.drop_points)) from None

    def vehicle_model(self, name: str) -> VehicleModel:
        try:
            return self.vehicle_models[name]
        except KeyError:
            raise UnknownPlace("vehicle model", name, list(self.vehicle_models)) from None


# --------------------------------------------------------------------------- loading


class _Loader:
    """Reads one folder; holds the frame so every coordinate is checked and converted once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.toml_path = str(folder / SITE_TOML)
        self.frame: LocalFrame | None = None

    # ---- helpers

    def local(self, path: str, feature: str, lat_deg: float, lon_deg: float) -> tuple[float, float]:
        assert self.frame is not None
        x, y = self.frame.to_local(lat_deg, lon_deg)
        if math.hypot(x, y) > MAX_DISTANCE_FROM_ORIGIN_M:
            raise SiteError(
                path,
                feature,
                f"({lat_deg}, {lon_deg}) is {math.hypot(x, y) / 1000:.0f} km from the site origin "
                "(swapped lat/lon? GeoJSON positions are [lon, lat])",
            )
        return x, y

    def local_array(self, path: str, feature: str, lat_lon: Sequence[tuple[float, float]]) -> FloatArray:
        assert self.frame is not None
        xy = self.frame.points_to_local(np.asarray(lat_lon, dtype=np.float64))
        far = np.hypot(xy[:, 0], xy[:, 1]) > MAX_DISTANCE_FROM_ORIGIN_M
        if far.any():
            lat, lon = lat_lon[int(np.argmax(far))]
            self.local(path, feature, lat, lon)
        return xy

    def polygon(self, path: str, feature: str, coords: object) -> Polygon:
        if not isinstance(coords, list) or not coords:
            raise SiteError(path, feature, "a Polygon needs a list of rings")
        rings = [self.local_array(path, feature, positions(path, feature, r, 4)) for r in coords]
        try:
            poly = Polygon(rings[0], rings[1:])
        except (ValueError, shapely.errors.GEOSException) as exc:
            raise SiteError(path, feature, f"not a polygon: {exc}") from exc
        if not poly.is_valid:
            raise SiteError(path, feature, f"invalid polygon: {explain_validity(poly)}")
        if poly.area <= 0.0:
            raise SiteError(path, feature, "polygon has no area")
        return poly

    def read_toml(self) -> Table:
        try:
            text = (self.folder / SITE_TOML).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SiteError(self.toml_path, "file", "missing (a site folder needs site.toml)") from None
        except OSError as exc:
            raise SiteError(self.toml_path, "file", f"cannot read: {exc}") from exc
        try:
            return Table(self.toml_path, "top level", tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise SiteError(self.toml_path, "syntax", f"malformed TOML: {exc}") from exc

    def read_features(self, name: str) -> tuple[str, list[tuple[str, Table, Mapping[str, Any]]]]:
        """A FeatureCollection -> (path, [(label, properties, geometry)])."""
        path = self.folder / name
        spath = str(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SiteError(spath, "file", "missing") from None
        except OSError as exc:
            raise SiteError(spath, "file", f"cannot read: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise SiteError(spath, "syntax", f"malformed JSON: {exc}") from exc
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise SiteError(spath, "top level", "must be a GeoJSON FeatureCollection")
        features = data.get("features")
        if not isinstance(features, list):
            raise SiteError(spath, "top level", "'features' must be a list")
        out: list[tuple[str, Table, Mapping[str, Any]]] = []
        for i, feat in enumerate(features):
            label = f"feature #{i + 1}"
            if not isinstance(feat, dict) or feat.get("type") != "Feature":
                raise SiteError(spath, label, "not a GeoJSON Feature")
            props = feat.get("properties") or {}
            if isinstance(props, dict):
                for key in ("id", "name"):
                    if isinstance(props.get(key), str):
                        label = f"{label} ({key} {props[key]!r})"
                        break
            geometry = feat.get("geometry")
            if not isinstance(geometry, dict) or not isinstance(geometry.get("type"), str):
                raise SiteError(spath, label, "has no geometry")
            table = Table(spath, label, props)
            out.append((label, table, geometry))
        return spath, out

    # ---- sections

    def load(self) -> Site:
        top = self.read_toml()
        name = top.text("name")
        origin_t = top.table("origin")
        lat0 = origin_t.number("lat_deg")
        lon0 = origin_t.number("lon_deg")
        check_lat_lon(self.toml_path, "origin", lat0, lon0)
        ground_m = origin_t.number("ground_alt_amsl_m", 0.0)
        origin_t.finish()
        origin = LatLon(lat0, lon0, ground_m)
        self.frame = LocalFrame(lat0, lon0)
        buffer_m = top.number("buffer_m", 10.0, min_value=0.0)
        layers = tuple(self.cruise_layer(v) for v in top.array("cruise_layers_m", [40.0]))
        if not layers:
            raise SiteError(self.toml_path, "cruise_layers_m", "needs at least one altitude")
        if len(set(layers)) != len(layers):
            raise SiteError(self.toml_path, "cruise_layers_m", f"duplicate altitudes in {list(layers)}")
        files = dict(DEFAULT_FILES)
        if top.has("files"):
            files_t = top.table("files")
            for key in DEFAULT_FILES:
                files[key] = files_t.text(key, DEFAULT_FILES[key])
            files_t.finish()

        area = self.load_area(files["area"])
        zones = self.load_zones(files["zones"])
        depots = self.load_depots(top, area, ground_m)
        drops = self.load_drop_points(files["drop_points"], area, ground_m, depots)
        lines = self.load_sidewalks(files["sidewalks"])
        models = self.load_models(top)
        fleet = self.load_fleet(top, models, depots)
        top.finish()
        return Site(
            name=name,
            frame=self.frame,
            origin=origin,
            area=area,
            depots=depots,
            drop_points=drops,
            vehicle_models=models,
            zones=zones,
            sidewalk_lines=lines,
            fleet=fleet,
            buffer_m=buffer_m,
            cruise_layers_m=tuple(sorted(layers)),
            source=self.folder,
        )

    def cruise_layer(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise SiteError(
                self.toml_path, "cruise_layers_m", f"altitudes must be numbers > 0, got {value!r}"
            )
        return float(value)

    def load_area(self, name: str) -> Polygon:
        path, feats = self.read_features(name)
        if len(feats) != 1:
            raise SiteError(path, "features", f"needs exactly one Polygon feature, found {len(feats)}")
        label, _props, geom = feats[0]
        if geom["type"] != "Polygon":
            raise SiteError(path, label, f"the operating area must be a Polygon, not {geom['type']}")
        return self.polygon(path, label, geom.get("coordinates"))

    def load_zones(self, name: str) -> tuple[NoFlyZone, ...]:
        from planner.airspace import NoFlyZone

        path, feats = self.read_features(name)
        zones: list[NoFlyZone] = []
        seen: set[str] = set()
        for label, props, geom in feats:
            zone_id = props.text("id")
            if zone_id in seen:
                props.fail(f"duplicate zone id {zone_id!r}")
            seen.add(zone_id)
            reason = props.text("reason")
            floor_m = props.number("floor_m", 0.0, min_value=0.0)
            ceiling_m = props.number("ceiling_m", math.inf, allow_inf=True)
            if not ceiling_m > floor_m:
                props.fail(f"ceiling_m ({ceiling_m}) must be above floor_m ({floor_m})")
            t_from = props.time_s("active_from")
            t_until = props.time_s("active_until")
            if t_from is not None and t_until is not None and not t_until > t_from:
                props.fail("active_until must be after active_from")
            props.text("osm_tag", "", nonempty=False)
            kw: dict[str, Any] = {
                "floor_m": floor_m,
                "ceiling_m": ceiling_m,
                "active_from_s": t_from,
                "active_until_s": t_until,
            }
            try:
                if geom["type"] == "Point":
                    radius_m = props.number("radius_m", positive=True)
                    lat, lon = position(path, label, geom.get("coordinates"))
                    x, y = self.local(path, label, lat, lon)
                    zone = NoFlyZone.make_circle(zone_id, reason, x, y, radius_m, **kw)
                elif geom["type"] == "Polygon":
                    if props.has("radius_m"):
                        props.fail("'radius_m' only applies to Point zones")
                    props.raw("radius_m", None)
                    shape = self.polygon(path, label, geom.get("coordinates"))
                    zone = NoFlyZone(zone_id, reason, shape, **kw)
                else:
                    props.fail(f"a zone must be a Polygon or a Point with radius_m, not {geom['type']}")
            except ValueError as exc:  # the zone's own checks, should a new one be added there
                raise SiteError(path, label, str(exc)) from exc
            _finish_info(props)
            zones.append(zone)
        return tuple(zones)

    def load_depots(self, top: Table, area: Polygon, ground_m: float) -> dict[str, Depot]:
        depots: dict[str, Depot] = {}
        pad_ids: set[str] = set()
        for t in top.tables("depots", "name", "depot"):
            name = t.text("name")
            if name in depots:
                t.fail(f"duplicate depot name {name!r}")
            alt_m = t.number("alt_amsl_m", ground_m)
            position, xy = self.toml_point(t, area, "depot", alt_m)
            pads: list[Pad] = []
            for i, item in enumerate(t.array("pads", [])):
                pt = Table(self.toml_path, f"depot {name!r} pad #{i + 1}", item)
                pad_id = pt.text("pad_id")
                pt.feature = f"depot {name!r} pad {pad_id!r}"
                if pad_id in pad_ids:
                    pt.fail(f"duplicate pad id {pad_id!r}")
                pad_ids.add(pad_id)
                pads.append(Pad(pad_id, *self.toml_point(pt, area, "pad", alt_m)))
                pt.finish()
            chargers = t.integer("chargers", 0, min_value=0)
            t.finish()
            depots[name] = Depot(name, position, xy, tuple(pads), chargers)
        if not depots:
            raise SiteError(self.toml_path, "depots", "a site needs at least one [[depots]] entry")
        return depots

    def toml_point(
        self, t: Table, area: Polygon, what: str, alt_m: float
    ) -> tuple[LatLon, tuple[float, float]]:
        lat, lon = t.number("lat_deg"), t.number("lon_deg")
        check_lat_lon(t.path, t.feature, lat, lon)
        xy = self.local(t.path, t.feature, lat, lon)
        if not area.covers(shapely.Point(xy)):
            t.fail(f"{what} at ({lat}, {lon}) lies outside the operating area")
        return LatLon(lat, lon, alt_m), xy

    def load_drop_points(
        self, name: str, area: Polygon, ground_m: float, depots: Mapping[str, Depot]
    ) -> dict[str, DropPoint]:
        path, feats = self.read_features(name)
        drops: dict[str, DropPoint] = {}
        for label, props, geom in feats:
            dname = props.text("name")
            if dname in drops:
                props.fail(f"duplicate drop point name {dname!r}")
            if dname in depots:
                props.fail(f"drop point name {dname!r} is also a depot name")
            kind = props.text("kind")
            if kind not in DROP_KINDS:
                props.fail(f"kind must be one of {', '.join(DROP_KINDS)}, not {kind!r}")
            address = props.text("address", "", nonempty=False)
            drone_ok = props.flag("drone_ok", True)
            robot_ok = props.flag("robot_ok", True)
            if not (drone_ok or robot_ok):
                props.fail("neither drone_ok nor robot_ok: no vehicle could deliver here")
            _finish_info(props)
            if geom["type"] != "Point":
                raise SiteError(path, label, f"a drop point must be a Point, not {geom['type']}")
            lat, lon = position(path, label, geom.get("coordinates"))
            xy = self.local(path, label, lat, lon)
            if not area.covers(shapely.Point(xy)):
                raise SiteError(path, label, f"drop point at ({lat}, {lon}) lies outside the operating area")
            drops[dname] = DropPoint(dname, kind, LatLon(lat, lon, ground_m), xy, address, drone_ok, robot_ok)
        return drops

    def load_sidewalks(self, name: str) -> tuple[FloatArray, ...]:
        path, feats = self.read_features(name)
        lines: list[FloatArray] = []
        for label, _props, geom in feats:
            gtype = geom["type"]
            coords = geom.get("coordinates")
            if gtype == "LineString":
                parts: list[object] = [coords]
            elif gtype == "MultiLineString" and isinstance(coords, list):
                parts = list(coords)
            else:
                raise SiteError(
                    path, label, f"a sidewalk must be a LineString or MultiLineString, not {gtype}"
                )
            for part in parts:
                xy = self.local_array(path, label, positions(path, label, part, 2))
                if float(np.hypot(*np.diff(xy, axis=0).T).sum()) <= 0.0:
                    raise SiteError(path, label, "line has zero length")
                lines.append(xy)
        return tuple(lines)

    def load_models(self, top: Table) -> dict[str, VehicleModel]:
        models: dict[str, VehicleModel] = {}
        for t in top.tables("vehicle_models", "name", "vehicle model"):
            kw: dict[str, Any] = {}
            for f in dataclasses.fields(VehicleModel):
                default = MISSING if f.default is dataclasses.MISSING else f.default
                if f.type in ("str", "VehicleKind"):
                    kw[f.name] = t.text(f.name, default)
                elif f.type == "bool":
                    kw[f.name] = t.flag(f.name, default)
                else:
                    kw[f.name] = t.number(f.name, default, min_value=0.0)
            t.finish()
            if kw["name"] in models:
                t.fail(f"duplicate vehicle model name {kw['name']!r}")
            try:
                models[kw["name"]] = VehicleModel(**kw)
            except ValueError as exc:
                raise SiteError(t.path, t.feature, str(exc)) from exc
        return models

    def load_fleet(
        self, top: Table, models: Mapping[str, VehicleModel], depots: Mapping[str, Depot]
    ) -> tuple[FleetEntry, ...]:
        fleet: list[FleetEntry] = []
        seen: set[str] = set()
        for t in top.tables("fleet", "vehicle_id", "fleet vehicle"):
            entry = FleetEntry(t.text("vehicle_id"), t.text("model"), t.text("depot"))
            t.finish()
            if entry.vehicle_id in seen:
                t.fail(f"duplicate vehicle_id {entry.vehicle_id!r}")
            seen.add(entry.vehicle_id)
            if entry.model not in models:
                t.fail(f"unknown model {entry.model!r} (known: {', '.join(sorted(models)) or 'none'})")
            if entry.depot not in depots:
                t.fail(f"unknown depot {entry.depot!r} (known: {', '.join(sorted(depots))})")
            if models[entry.model].is_drone and not depots[entry.depot].pads:
                t.fail(f"drone model {entry.model!r} based at depot {entry.depot!r}, which has no pads")
            fleet.append(entry)
        return tuple(fleet)


def _finish_info(props: Table) -> None:
    props.finish(ignore_prefixes=_INFO_PREFIXES)


def load_site(path: str | Path) -> Site:
    """Load and validate the site folder at `path` (or the folder of a `site.toml` path)."""
    folder = Path(path)
    if folder.name == SITE_TOML:
        folder = folder.parent
    if not folder.is_dir():
        raise SiteError(str(folder), "folder", "not a directory")
    return _Loader(folder).load()


# --------------------------------------------------------------------------- saving


def save_site(
    site: Site,
    folder: str | Path,
    *,
    zone_properties: Mapping[str, Mapping[str, Any]] | None = None,
    drop_point_properties: Mapping[str, Mapping[str, Any]] | None = None,
    decimals: int = 7,
) -> Path:
    """Write `site` as a site folder (creating it); returns the folder.

    `zone_properties` / `drop_point_properties` add informational properties (keys
    `osm_*` or `_*`, or `osm_tag`) per zone id / drop point name, e.g. the OSM provenance.
    `decimals` rounds WGS84 degrees (7 ~ 1 cm, 6 ~ 10 cm).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    frame = site.frame

    def ll(xy: FloatArray) -> list[list[float]]:
        lat_lon = frame.points_to_wgs84(xy)
        return [[round(float(lon), decimals), round(float(lat), decimals)] for lat, lon in lat_lon]

    def poly_coords(poly: Polygon) -> list[list[list[float]]]:
        rings = [poly.exterior, *poly.interiors]
        return [ll(np.asarray(r.coords, dtype=np.float64)) for r in rings]

    area_feat = _feature({"name": site.name}, {"type": "Polygon", "coordinates": poly_coords(site.area)})
    zone_feats = []
    for zone in site.zones:
        props: dict[str, Any] = {"id": zone.zone_id, "reason": zone.reason}
        if zone.floor_m:
            props["floor_m"] = zone.floor_m
        if math.isfinite(zone.ceiling_m):
            props["ceiling_m"] = zone.ceiling_m
        for key, stamp in (("active_from", zone.active_from_s), ("active_until", zone.active_until_s)):
            if stamp is not None:
                props[key] = datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")
        props.update((zone_properties or {}).get(zone.zone_id, {}))
        if zone.circle is not None:
            x, y, r = zone.circle
            props["radius_m"] = r
            lat, lon = frame.to_wgs84(x, y)  # scalar call: pyproj warns on (1, 2) arrays
            geom: dict[str, Any] = {
                "type": "Point",
                "coordinates": [round(lon, decimals), round(lat, decimals)],
            }
        else:
            geom = {"type": "Polygon", "coordinates": poly_coords(zone.shape)}
        zone_feats.append(_feature(props, geom))
    drop_feats = []
    for d in site.drop_points.values():
        props = {
            "name": d.name,
            "kind": d.kind,
            "address": d.address,
            "drone_ok": d.drone_ok,
            "robot_ok": d.robot_ok,
        }
        props.update((drop_point_properties or {}).get(d.name, {}))
        point = [round(d.position.lon_deg, decimals), round(d.position.lat_deg, decimals)]
        drop_feats.append(_feature(props, {"type": "Point", "coordinates": point}))
    walk_feats = [
        _feature({}, {"type": "LineString", "coordinates": ll(line)}) for line in site.sidewalk_lines
    ]

    for key, feats in (
        ("area", [area_feat]),
        ("zones", zone_feats),
        ("drop_points", drop_feats),
        ("sidewalks", walk_feats),
    ):
        _write_geojson(out / DEFAULT_FILES[key], feats)
    (out / SITE_TOML).write_text(_site_toml(site, decimals), encoding="utf-8")
    return out


def _feature(props: Mapping[str, Any], geometry: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": dict(props), "geometry": dict(geometry)}


def _write_geojson(path: Path, features: Iterable[Mapping[str, Any]]) -> None:
    # One feature per line: small files that still diff well.
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in features]
    body = ",\n".join(lines)
    path.write_text(f'{{"type":"FeatureCollection","features":[\n{body}\n]}}\n', encoding="utf-8")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def _site_toml(site: Site, decimals: int) -> str:
    def kv(key: str, value: object) -> str:
        return f"{key} = {_toml_value(value)}"

    o = site.origin
    out = [
        kv("name", site.name),
        kv("buffer_m", float(site.buffer_m)),
        kv("cruise_layers_m", [float(v) for v in site.cruise_layers_m]),
        "",
        "[origin]",
        kv("lat_deg", round(o.lat_deg, decimals)),
        kv("lon_deg", round(o.lon_deg, decimals)),
        kv("ground_alt_amsl_m", float(o.alt_amsl_m)),
        "",
        "[files]",
        *(kv(k, v) for k, v in DEFAULT_FILES.items()),
    ]
    for depot in site.depots.values():
        out += [
            "",
            "[[depots]]",
            kv("name", depot.name),
            kv("lat_deg", round(depot.position.lat_deg, decimals)),
            kv("lon_deg", round(depot.position.lon_deg, decimals)),
        ]
        if depot.position.alt_amsl_m != o.alt_amsl_m:
            out.append(kv("alt_amsl_m", float(depot.position.alt_amsl_m)))
        out.append(kv("chargers", depot.chargers))
        out.append("pads = [")
        for pad in depot.pads:
            p = {
                "pad_id": pad.pad_id,
                "lat_deg": round(pad.position.lat_deg, decimals),
                "lon_deg": round(pad.position.lon_deg, decimals),
            }
            out.append(f"  {_toml_value(p)},")
        out.append("]")
    for model in site.vehicle_models.values():
        out += ["", "[[vehicle_models]]"]
        out += [kv(f.name, getattr(model, f.name)) for f in dataclasses.fields(model)]
    for entry in site.fleet:
        out += [
            "",
            "[[fleet]]",
            kv("vehicle_id", entry.vehicle_id),
            kv("model", entry.model),
            kv("depot", entry.depot),
        ]
    return "\n".join(out) + "\n"
