"""Read and write QGroundControl `.plan` files (mission, geofence, rally points).

The model is raw MAVLink: each mission item keeps `command`, `frame`, param1-4 and x/y/z (param5-7:
latitude, longitude, altitude for global frames) exactly as QGC stores them in `params`. Fences are
polygons and circles, rally points are positions. Reading then writing a plan gives back the same model;
a file written here opens in QGroundControl.

The format follows QGroundControl's own writer (src/MissionManager: MissionController, MissionItem,
SimpleMissionItem, GeoFenceController, QGCFencePolygon, QGCFenceCircle, RallyPointController):

    {"fileType": "Plan", "version": 1, "groundStation": "QGroundControl",
     "mission": {"version": 2, "firmwareType": 12, "vehicleType": 2, "cruiseSpeed": 15, "hoverSpeed": 5,
                 "globalPlanAltitudeMode": 1, "plannedHomePosition": [lat, lon, alt_amsl],
                 "items": [{"type": "SimpleItem", "command": 16, "frame": 3, "params": [7 numbers or null],
                            "autoContinue": true, "doJumpId": 1,
                            "AltitudeMode": 1, "Altitude": 30, "AMSLAltAboveTerrain": null}, ...]},
     "geoFence": {"version": 2, "polygons": [{"version": 1, "inclusion": true, "polygon": [[lat, lon], ...]}],
                  "circles": [{"version": 1, "inclusion": false,
                               "circle": {"center": [lat, lon], "radius": 25}}]},
     "rallyPoints": {"version": 2, "points": [[lat, lon, alt], ...]}}

QGC writes NaN parameters as JSON null; they read back as NaN. Survey and other ComplexItems have no raw
form here: such a plan raises PlanFileError (export it from QGC as simple items first).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vehicles.errors import PlanFileError

__all__ = [
    "FenceCircle",
    "FencePolygon",
    "MissionItem",
    "PlanFileError",
    "QgcPlan",
    "RallyPoint",
    "dumps_plan",
    "fence_mission_items",
    "load_plan",
    "loads_plan",
    "plan_from_json",
    "plan_to_json",
    "rally_mission_items",
    "save_plan",
]

FIRMWARE_PX4 = 12  # MAV_AUTOPILOT_PX4
VEHICLE_QUADROTOR = 2  # MAV_TYPE_QUADROTOR
VEHICLE_GROUND_ROVER = 10  # MAV_TYPE_GROUND_ROVER

# MAV_FRAME values QGC stores, and the QGC altitude mode each maps to (QGroundControlQmlGlobal::AltMode)
_FRAME_GLOBAL = 0
_FRAME_MISSION = 2
_FRAME_GLOBAL_RELATIVE_ALT = 3
_FRAME_GLOBAL_TERRAIN_ALT = 10
_ALT_MODE_RELATIVE = 1
_ALT_MODE_ABSOLUTE = 2
_ALT_MODE_TERRAIN_FRAME = 4
_ALT_MODE_BY_FRAME = {
    _FRAME_GLOBAL: _ALT_MODE_ABSOLUTE,
    _FRAME_GLOBAL_RELATIVE_ALT: _ALT_MODE_RELATIVE,
    _FRAME_GLOBAL_TERRAIN_ALT: _ALT_MODE_TERRAIN_FRAME,
}
# NAV commands that carry an altitude in param7 (QGC's "specifiesAltitude")
_NAV_WITH_ALTITUDE = frozenset({16, 17, 18, 19, 21, 22, 23, 24, 31, 82, 84, 85, 92, 93, 94})

# MAVLink fence / rally item commands (for upload with mission_type FENCE / RALLY)
CMD_FENCE_POLYGON_VERTEX_INCLUSION = 5001
CMD_FENCE_POLYGON_VERTEX_EXCLUSION = 5002
CMD_FENCE_CIRCLE_INCLUSION = 5003
CMD_FENCE_CIRCLE_EXCLUSION = 5004
CMD_NAV_RALLY_POINT = 5100



@dataclass(frozen=True, slots=True)
class MissionItem:
    """One raw MAVLink mission item (what MISSION_ITEM_INT carries, with x/y as degrees)."""

    command: int
    frame: int
    params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    lat_deg: float = 0.0  # param5 / x
    lon_deg: float = 0.0  # param6 / y
    alt_m: float = 0.0  # param7 / z: metres in the frame's reference (relative, AMSL, terrain)
    auto_continue: bool = True


@dataclass(frozen=True, slots=True)
class FencePolygon:
    vertices: tuple[tuple[float, float], ...]  # (lat_deg, lon_deg), not closed (first != last)
    inclusion: bool = True


@dataclass(frozen=True, slots=True)
class FenceCircle:
    center_lat_deg: float
    center_lon_deg: float
    radius_m: float
    inclusion: bool = True


@dataclass(frozen=True, slots=True)
class RallyPoint:
    lat_deg: float
    lon_deg: float
    alt_m: float  # relative to home, as QGC plans it


@dataclass(frozen=True, slots=True)
class QgcPlan:
    items: tuple[MissionItem, ...]
    planned_home: tuple[float, float, float]  # (lat_deg, lon_deg, alt_amsl_m)
    vehicle_type: int = VEHICLE_QUADROTOR
    firmware_type: int = FIRMWARE_PX4
    cruise_speed_m_s: float = 15.0
    hover_speed_m_s: float = 5.0
    global_plan_altitude_mode: int | None = _ALT_MODE_RELATIVE
    polygons: tuple[FencePolygon, ...] = ()
    circles: tuple[FenceCircle, ...] = ()
    breach_return: tuple[float, float, float] | None = None
    rally_points: tuple[RallyPoint, ...] = ()
    ground_station: str = field(default="QGroundControl", compare=False)


# --- writing -------------------------------------------------------------------------------------


def _num(value: float) -> float | int | None:
    """A JSON number as QGC writes it: NaN as null, integral values without a fraction."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f"{value} cannot be written to a .plan file")
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _item_to_json(item: MissionItem, seq: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "autoContinue": item.auto_continue,
        "command": item.command,
        "doJumpId": seq,
        "frame": item.frame,
        "params": [_num(float(p)) for p in (*item.params, item.lat_deg, item.lon_deg, item.alt_m)],
        "type": "SimpleItem",
    }
    alt_mode = _ALT_MODE_BY_FRAME.get(item.frame)
    if alt_mode is not None and item.command in _NAV_WITH_ALTITUDE:
        out["AltitudeMode"] = alt_mode
        out["Altitude"] = _num(float(item.alt_m))
        out["AMSLAltAboveTerrain"] = None
    return out


def plan_to_json(plan: QgcPlan) -> dict[str, Any]:
    """The plan as the JSON object QGroundControl writes."""
    mission: dict[str, Any] = {
        "cruiseSpeed": _num(plan.cruise_speed_m_s),
        "firmwareType": plan.firmware_type,
        "hoverSpeed": _num(plan.hover_speed_m_s),
        "items": [_item_to_json(item, seq) for seq, item in enumerate(plan.items, start=1)],
        "plannedHomePosition": [_num(v) for v in plan.planned_home],
        "vehicleType": plan.vehicle_type,
        "version": 2,
    }
    if plan.global_plan_altitude_mode is not None:
        mission["globalPlanAltitudeMode"] = plan.global_plan_altitude_mode
    geofence: dict[str, Any] = {
        "circles": [
            {
                "circle": {"center": [_num(c.center_lat_deg), _num(c.center_lon_deg)], "radius": _num(c.radius_m)},
                "inclusion": c.inclusion,
                "version": 1,
            }
            for c in plan.circles
        ],
        "polygons": [
            {
                "inclusion": p.inclusion,
                "polygon": [[_num(lat), _num(lon)] for lat, lon in p.vertices],
                "version": 1,
            }
            for p in plan.polygons
        ],
        "version": 2,
    }
    if plan.breach_return is not None:
        geofence["breachReturn"] = [_num(v) for v in plan.breach_return]
    return {
        "fileType": "Plan",
        "geoFence": geofence,
        "groundStation": plan.ground_station,
        "mission": mission,
        "rallyPoints": {
            "points": [[_num(r.lat_deg), _num(r.lon_deg), _num(r.alt_m)] for r in plan.rally_points],
            "version": 2,
        },
        "version": 1,
    }


def dumps_plan(plan: QgcPlan) -> str:
    # QGC indents with 4 spaces and sorts keys (QJsonDocument); allow_nan=False: NaN is written as null
    return json.dumps(plan_to_json(plan), indent=4, sort_keys=True, allow_nan=False) + "\n"


def save_plan(plan: QgcPlan, path: str | os.PathLike[str]) -> None:
    """Write atomically: a reader never sees half a plan."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(dumps_plan(plan), encoding="utf-8")
    tmp.replace(target)


# --- reading -------------------------------------------------------------------------------------


class _Reader:
    """Typed access to the decoded JSON, raising PlanFileError that names the place."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> PlanFileError:
        return PlanFileError(where, message, self.path)

    def obj(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        return value

    def arr(self, value: Any, where: str, length: int | None = None) -> Sequence[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected an array, got {type(value).__name__}")
        if length is not None and len(value) != length:
            raise self.fail(where, f"expected {length} values, got {len(value)}")
        return value

    def key(self, parent: Mapping[str, Any], name: str, where: str) -> Any:
        if name not in parent:
            raise self.fail(f"{where}.{name}" if where else name, "missing")
        return parent[name]

    def num(self, value: Any, where: str, *, nullable: bool = False) -> float:
        if value is None and nullable:
            return math.nan
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, got {json.dumps(value)}")
        return float(value)

    def int_(self, value: Any, where: str) -> int:
        number = self.num(value, where)
        if not number.is_integer():
            raise self.fail(where, f"expected an integer, got {value}")
        return int(number)

    def bool_(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {json.dumps(value)}")
        return value

    def version(self, parent: Mapping[str, Any], where: str, expected: int) -> None:
        got = self.key(parent, "version", where)
        if got != expected:
            raise self.fail(f"{where}.version" if where else "version", f"unsupported version {got!r}, expected {expected}")

    def latlon(self, value: Any, where: str) -> tuple[float, float]:
        pair = self.arr(value, where)
        if len(pair) < 2:
            raise self.fail(where, "expected [lat, lon]")
        lat, lon = self.num(pair[0], f"{where}[0]"), self.num(pair[1], f"{where}[1]")
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise self.fail(where, f"{lat}, {lon} is not a WGS84 position")
        return lat, lon

    def position3(self, value: Any, where: str) -> tuple[float, float, float]:
        triple = self.arr(value, where, 3)
        lat, lon = self.latlon(triple[:2], where)
        return lat, lon, self.num(triple[2], f"{where}[2]")


def _read_item(r: _Reader, raw: Any, where: str) -> MissionItem:
    obj = r.obj(raw, where)
    kind = r.key(obj, "type", where)
    if kind != "SimpleItem":
        raise r.fail(
            f"{where}.type",
            f"{kind!r} items are not supported (only raw SimpleItems); in QGroundControl convert "
            "complex items (survey, corridor, landing pattern) to simple waypoints first",
        )
    params = r.arr(r.key(obj, "params", where), f"{where}.params", 7)
    values = [r.num(p, f"{where}.params[{i}]", nullable=True) for i, p in enumerate(params)]
    return MissionItem(
        command=r.int_(r.key(obj, "command", where), f"{where}.command"),
        frame=r.int_(r.key(obj, "frame", where), f"{where}.frame"),
        params=(values[0], values[1], values[2], values[3]),
        lat_deg=values[4],
        lon_deg=values[5],
        alt_m=values[6],
        auto_continue=r.bool_(r.key(obj, "autoContinue", where), f"{where}.autoContinue"),
    )


def _read_geofence(r: _Reader, raw: Any) -> tuple[tuple[FencePolygon, ...], tuple[FenceCircle, ...], Any]:
    fence = r.obj(raw, "geoFence")
    r.version(fence, "geoFence", 2)
    polygons: list[FencePolygon] = []
    for i, raw_poly in enumerate(r.arr(fence.get("polygons", []), "geoFence.polygons")):
        where = f"geoFence.polygons[{i}]"
        poly = r.obj(raw_poly, where)
        r.version(poly, where, 1)
        pts = r.arr(r.key(poly, "polygon", where), f"{where}.polygon")
        vertices = tuple(r.latlon(p, f"{where}.polygon[{j}]") for j, p in enumerate(pts))
        if len(vertices) < 3:
            raise r.fail(f"{where}.polygon", f"a fence polygon needs at least 3 vertices, got {len(vertices)}")
        polygons.append(FencePolygon(vertices, r.bool_(r.key(poly, "inclusion", where), f"{where}.inclusion")))
    circles: list[FenceCircle] = []
    for i, raw_circle in enumerate(r.arr(fence.get("circles", []), "geoFence.circles")):
        where = f"geoFence.circles[{i}]"
        circ = r.obj(raw_circle, where)
        r.version(circ, where, 1)
        inner = r.obj(r.key(circ, "circle", where), f"{where}.circle")
        lat, lon = r.latlon(r.key(inner, "center", f"{where}.circle"), f"{where}.circle.center")
        radius = r.num(r.key(inner, "radius", f"{where}.circle"), f"{where}.circle.radius")
        if not radius > 0.0:
            raise r.fail(f"{where}.circle.radius", f"must be > 0, got {radius}")
        circles.append(FenceCircle(lat, lon, radius, r.bool_(r.key(circ, "inclusion", where), f"{where}.inclusion")))
    breach = fence.get("breachReturn")
    breach_return = None if breach is None else r.position3(breach, "geoFence.breachReturn")
    return tuple(polygons), tuple(circles), breach_return


def plan_from_json(doc: Any, *, path: str | None = None) -> QgcPlan:
    """A QgcPlan from the decoded JSON of a .plan file."""
    r = _Reader(path)
    root = r.obj(doc, "(file)")
    if root.get("fileType") != "Plan":
        raise r.fail("fileType", f"expected \"Plan\", got {json.dumps(root.get('fileType'))}")
    r.version(root, "", 1)
    mission = r.obj(r.key(root, "mission", ""), "mission")
    r.version(mission, "mission", 2)
    raw_items = r.arr(r.key(mission, "items", "mission"), "mission.items")
    items = tuple(_read_item(r, raw, f"mission.items[{i}]") for i, raw in enumerate(raw_items))
    home = r.position3(r.key(mission, "plannedHomePosition", "mission"), "mission.plannedHomePosition")
    polygons: tuple[FencePolygon, ...] = ()
    circles: tuple[FenceCircle, ...] = ()
    breach_return = None
    if root.get("geoFence") is not None:
        polygons, circles, breach_return = _read_geofence(r, root["geoFence"])
    rally: tuple[RallyPoint, ...] = ()
    if root.get("rallyPoints") is not None:
        rally_obj = r.obj(root["rallyPoints"], "rallyPoints")
        r.version(rally_obj, "rallyPoints", 2)
        points = r.arr(rally_obj.get("points", []), "rallyPoints.points")
        rally = tuple(RallyPoint(*r.position3(p, f"rallyPoints.points[{i}]")) for i, p in enumerate(points))
    alt_mode = mission.get("globalPlanAltitudeMode")
    ground_station = root.get("groundStation", "")
    return QgcPlan(
        items=items,
        planned_home=home,
        vehicle_type=r.int_(mission.get("vehicleType", VEHICLE_QUADROTOR), "mission.vehicleType"),
        firmware_type=r.int_(r.key(mission, "firmwareType", "mission"), "mission.firmwareType"),
        cruise_speed_m_s=r.num(mission.get("cruiseSpeed", 15.0), "mission.cruiseSpeed"),
        hover_speed_m_s=r.num(mission.get("hoverSpeed", 5.0), "mission.hoverSpeed"),
        global_plan_altitude_mode=None if alt_mode is None else r.int_(alt_mode, "mission.globalPlanAltitudeMode"),
        polygons=polygons,
        circles=circles,
        breach_return=breach_return,
        rally_points=rally,
        ground_station=ground_station if isinstance(ground_station, str) else "",
    )


def loads_plan(text: str | bytes, *, path: str | None = None) -> QgcPlan:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlanFileError("(file)", f"not valid JSON: {exc}", path) from exc
    return plan_from_json(doc, path=path)


def load_plan(path: str | os.PathLike[str]) -> QgcPlan:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PlanFileError("(file)", f"cannot read: {exc.strerror or exc}", str(path)) from exc
    return loads_plan(data, path=str(path))


# --- to MAVLink fence / rally items --------------------------------------------------------------


def fence_mission_items(plan: QgcPlan) -> tuple[MissionItem, ...]:
    """The fence as MAVLink items (mission_type FENCE): one vertex item per polygon vertex with
    param1 = vertex count, one item per circle with param1 = radius; frame GLOBAL (0)."""
    out: list[MissionItem] = []
    for poly in plan.polygons:
        cmd = CMD_FENCE_POLYGON_VERTEX_INCLUSION if poly.inclusion else CMD_FENCE_POLYGON_VERTEX_EXCLUSION
        count = float(len(poly.vertices))
        out += [MissionItem(cmd, _FRAME_GLOBAL, (count, 0.0, 0.0, 0.0), lat, lon, 0.0) for lat, lon in poly.vertices]
    for circ in plan.circles:
        cmd = CMD_FENCE_CIRCLE_INCLUSION if circ.inclusion else CMD_FENCE_CIRCLE_EXCLUSION
        out.append(
            MissionItem(cmd, _FRAME_GLOBAL, (circ.radius_m, 0.0, 0.0, 0.0), circ.center_lat_deg, circ.center_lon_deg)
        )
    return tuple(out)


def rally_mission_items(plan: QgcPlan) -> tuple[MissionItem, ...]:
    """Rally points as MAVLink items (mission_type RALLY), frame GLOBAL_RELATIVE_ALT (3): PX4's RTL
    reads rally points only in frames 0 and 3 (frame 6 makes it report "RTL: unsupported MAV_FRAME")."""
    return tuple(
        MissionItem(CMD_NAV_RALLY_POINT, _FRAME_GLOBAL_RELATIVE_ALT, (0.0, 0.0, 0.0, 0.0), r.lat_deg, r.lon_deg, r.alt_m)
        for r in plan.rally_points
    )
