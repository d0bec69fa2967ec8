"""vehicles.qgc_plan: QGroundControl .plan files."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vehicles.qgc_plan import (
    FenceCircle,
    FencePolygon,
    MissionItem,
    PlanFileError,
    QgcPlan,
    RallyPoint,
    dumps_plan,
    fence_mission_items,
    load_plan,
    loads_plan,
    plan_to_json,
    rally_mission_items,
    save_plan,
)

# Shaped like a QGroundControl 4.x export for a PX4 quad (key order, indentation, null params,
# AltitudeMode trio on NAV items only, DO items in frame 2 MISSION, fence polygon + circle, rally points).
QGC_SAMPLE = """{
    "fileType": "Plan",
    "geoFence": {
        "circles": [
            {
                "circle": {
                    "center": [
                        60.1712,
                        24.9402
                    ],
                    "radius": 25.5
                },
                "inclusion": false,
                "version": 1
            }
        ],
        "polygons": [
            {
                "inclusion": true,
                "polygon": [
                    [
                        60.1690,
                        24.9350
                    ],
                    [
                        60.1730,
                        24.9350
                    ],
                    [
                        60.1730,
                        24.9450
                    ],
                    [
                        60.1690,
                        24.9450
                    ]
                ],
                "version": 1
            }
        ],
        "version": 2
    },
    "groundStation": "QGroundControl",
    "mission": {
        "cruiseSpeed": 15,
        "firmwareType": 12,
        "globalPlanAltitudeMode": 1,
        "hoverSpeed": 5,
        "items": [
            {
                "AMSLAltAboveTerrain": null,
                "Altitude": 30,
                "AltitudeMode": 1,
                "autoContinue": true,
                "command": 22,
                "doJumpId": 1,
                "frame": 3,
                "params": [
                    0,
                    0,
                    0,
                    null,
                    60.1699,
                    24.9384,
                    30
                ],
                "type": "SimpleItem"
            },
            {
                "autoContinue": true,
                "command": 178,
                "doJumpId": 2,
                "frame": 2,
                "params": [
                    1,
                    8,
                    -1,
                    0,
                    0,
                    0,
                    0
                ],
                "type": "SimpleItem"
            },
            {
                "AMSLAltAboveTerrain": null,
                "Altitude": 30,
                "AltitudeMode": 1,
                "autoContinue": true,
                "command": 16,
                "doJumpId": 3,
                "frame": 3,
                "params": [
                    0,
                    0,
                    0,
                    null,
                    60.17181446,
                    24.94123017,
                    30
                ],
                "type": "SimpleItem"
            },
            {
                "autoContinue": true,
                "command": 211,
                "doJumpId": 4,
                "frame": 2,
                "params": [
                    1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0
                ],
                "type": "SimpleItem"
            },
            {
                "AMSLAltAboveTerrain": null,
                "Altitude": 0,
                "AltitudeMode": 1,
                "autoContinue": true,
                "command": 21,
                "doJumpId": 5,
                "frame": 3,
                "params": [
                    0,
                    0,
                    0,
                    null,
                    60.1699,
                    24.9384,
                    0
                ],
                "type": "SimpleItem"
            }
        ],
        "plannedHomePosition": [
            60.1699,
            24.9384,
            12.3
        ],
        "vehicleType": 2,
        "version": 2
    },
    "rallyPoints": {
        "points": [
            [
                60.1705,
                24.9390,
                20
            ]
        ],
        "version": 2
    },
    "version": 1
}
"""


def sample_plan() -> QgcPlan:
    return QgcPlan(
        items=(
            MissionItem(22, 3, (0.0, 0.0, 0.0, math.nan), 60.1699, 24.9384, 30.0),
            MissionItem(178, 2, (1.0, 8.0, -1.0, 0.0)),
            MissionItem(16, 3, (0.5, 2.0, 0.0, 90.0), 60.17181446, 24.94123017, 30.0),
            MissionItem(211, 2, (1.0, 0.0, 0.0, 0.0)),
            MissionItem(21, 3, (0.0, 0.0, 0.0, 0.0), 60.1699, 24.9384, 0.0, auto_continue=False),
        ),
        planned_home=(60.1699, 24.9384, 12.3),
        vehicle_type=10,
        cruise_speed_m_s=3.5,
        polygons=(FencePolygon(((60.169, 24.935), (60.173, 24.935), (60.173, 24.945))),),
        circles=(FenceCircle(60.1712, 24.9402, 25.5, inclusion=False),),
        breach_return=(60.17, 24.94, 40.0),
        rally_points=(RallyPoint(60.1705, 24.939, 20.0),),
    )


def same_items(a: tuple[MissionItem, ...], b: tuple[MissionItem, ...]) -> bool:
    """Equality that treats NaN as equal to NaN (QGC's "unchanged" marker)."""

    def key(item: MissionItem) -> tuple[Any, ...]:
        values = (*item.params, item.lat_deg, item.lon_deg, item.alt_m)
        return (item.command, item.frame, item.auto_continue, *("nan" if math.isnan(v) else v for v in values))

    return [key(i) for i in a] == [key(i) for i in b]


def test_real_qgc_sample_parses() -> None:
    plan = loads_plan(QGC_SAMPLE)
    assert plan.firmware_type == 12
    assert plan.vehicle_type == 2
    assert plan.planned_home == (60.1699, 24.9384, 12.3)
    assert (plan.cruise_speed_m_s, plan.hover_speed_m_s, plan.global_plan_altitude_mode) == (15.0, 5.0, 1)
    assert [i.command for i in plan.items] == [22, 178, 16, 211, 21]
    takeoff = plan.items[0]
    assert takeoff.frame == 3
    assert math.isnan(takeoff.params[3])  # null -> NaN (yaw unchanged)
    assert (takeoff.lat_deg, takeoff.lon_deg, takeoff.alt_m) == (60.1699, 24.9384, 30.0)
    assert plan.items[1].params == (1.0, 8.0, -1.0, 0.0)
    assert plan.polygons[0].inclusion is True
    assert plan.polygons[0].vertices[2] == (60.173, 24.945)
    assert plan.circles == (FenceCircle(60.1712, 24.9402, 25.5, inclusion=False),)
    assert plan.rally_points == (RallyPoint(60.1705, 24.939, 20.0),)
    assert plan.ground_station == "QGroundControl"


def test_sample_rewrites_to_the_same_json() -> None:
    # QGC's own file, read and written back, is the same JSON document
    assert json.loads(dumps_plan(loads_plan(QGC_SAMPLE))) == json.loads(QGC_SAMPLE)


def test_round_trip_via_file(tmp_path: Path) -> None:
    plan = sample_plan()
    path = tmp_path / "m.plan"
    save_plan(plan, path)
    back = load_plan(path)
    assert same_items(back.items, plan.items)
    assert back == QgcPlan(**{**_fields(plan), "items": back.items})
    assert not list(tmp_path.glob("*.tmp"))


def _fields(plan: QgcPlan) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in QgcPlan.__dataclass_fields__}


def test_written_json_has_qgc_shape() -> None:
    doc = plan_to_json(sample_plan())
    assert (doc["fileType"], doc["version"], doc["groundStation"]) == ("Plan", 1, "QGroundControl")
    mission = doc["mission"]
    assert (mission["version"], mission["firmwareType"], mission["vehicleType"]) == (2, 12, 10)
    assert mission["plannedHomePosition"] == [60.1699, 24.9384, 12.3]
    takeoff, speed = mission["items"][0], mission["items"][1]
    assert takeoff["params"] == [0, 0, 0, None, 60.1699, 24.9384, 30]
    assert (takeoff["type"], takeoff["doJumpId"], takeoff["AltitudeMode"], takeoff["Altitude"]) == (
        "SimpleItem", 1, 1, 30)
    assert takeoff["AMSLAltAboveTerrain"] is None
    assert "AltitudeMode" not in speed  # DO items carry no altitude
    assert mission["items"][4]["autoContinue"] is False
    fence = doc["geoFence"]
    assert fence["version"] == 2
    assert fence["polygons"][0] == {"inclusion": True, "version": 1,
                                    "polygon": [[60.169, 24.935], [60.173, 24.935], [60.173, 24.945]]}
    assert fence["circles"][0] == {"inclusion": False, "version": 1,
                                   "circle": {"center": [60.1712, 24.9402], "radius": 25.5}}
    assert fence["breachReturn"] == [60.17, 24.94, 40]
    assert doc["rallyPoints"] == {"version": 2, "points": [[60.1705, 24.939, 20]]}
    text = dumps_plan(sample_plan())
    assert "NaN" not in text  # strict JSON, as QGC writes it
    assert text.startswith('{\n    "fileType": "Plan"')


coord = st.floats(min_value=-89.0, max_value=89.0, allow_nan=False)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
items_st = st.builds(
    MissionItem,
    command=st.integers(0, 65535),
    frame=st.sampled_from([0, 2, 3, 10]),
    params=st.tuples(finite, finite, finite, finite),
    lat_deg=finite,
    lon_deg=finite,
    alt_m=finite,
    auto_continue=st.booleans(),
)
polygon_st = st.builds(FencePolygon, st.lists(st.tuples(coord, coord), min_size=3, max_size=6).map(tuple),
                       st.booleans())
circle_st = st.builds(FenceCircle, coord, coord, st.floats(0.1, 1e5), st.booleans())
rally_st = st.builds(RallyPoint, coord, coord, finite)


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(items_st, max_size=8).map(tuple),
    home=st.tuples(coord, coord, finite),
    polygons=st.lists(polygon_st, max_size=3).map(tuple),
    circles=st.lists(circle_st, max_size=3).map(tuple),
    rally=st.lists(rally_st, max_size=3).map(tuple),
    vehicle_type=st.sampled_from([2, 10]),
)
def test_round_trip_is_exact(
    items: tuple[MissionItem, ...],
    home: tuple[float, float, float],
    polygons: tuple[FencePolygon, ...],
    circles: tuple[FenceCircle, ...],
    rally: tuple[RallyPoint, ...],
    vehicle_type: int,
) -> None:
    plan = QgcPlan(items=items, planned_home=home, vehicle_type=vehicle_type, polygons=polygons,
                   circles=circles, rally_points=rally)
    assert loads_plan(dumps_plan(plan)) == plan


def test_fence_and_rally_as_mavlink_items() -> None:
    plan = sample_plan()
    fence = fence_mission_items(plan)
    assert [(i.command, i.params[0]) for i in fence] == [(5001, 3.0)] * 3 + [(5004, 25.5)]
    assert (fence[1].lat_deg, fence[1].lon_deg) == (60.173, 24.935)
    assert all(i.frame == 0 for i in fence)
    (rally,) = rally_mission_items(plan)
    assert (rally.command, rally.frame, rally.alt_m) == (5100, 3, 20.0)


def _mutated(path: list[str | int], value: Any, delete: bool = False) -> str:
    doc = json.loads(QGC_SAMPLE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("text", "where", "match"),
    [
        ("{not json", "(file)", "not valid JSON"),
        ("[]", "(file)", "expected an object"),
        (_mutated(["fileType"], "Mission"), "fileType", "Plan"),
        (_mutated(["version"], 2), "version", "unsupported version"),
        (_mutated(["mission"], None, delete=True), "mission", "missing"),
        (_mutated(["mission", "version"], 1), "mission.version", "unsupported version"),
        (_mutated(["mission", "items", 2, "params"], [0, 0, 0]), "mission.items[2].params", "7 values"),
        (_mutated(["mission", "items", 1, "command"], "178"), "mission.items[1].command", "number"),
        (_mutated(["mission", "items", 1, "command"], 17.5), "mission.items[1].command", "integer"),
        (_mutated(["mission", "items", 0, "autoContinue"], 1), "mission.items[0].autoContinue", "true or false"),
        (_mutated(["mission", "items", 0, "type"], "ComplexItem"), "mission.items[0].type", "not supported"),
        (_mutated(["mission", "plannedHomePosition"], [60.0, 24.0]), "mission.plannedHomePosition", "3 values"),
        (_mutated(["mission", "plannedHomePosition"], [95.0, 24.0, 0]), "mission.plannedHomePosition", "WGS84"),
        (_mutated(["geoFence", "polygons", 0, "polygon"], [[60.0, 24.0], [60.1, 24.0]]),
         "geoFence.polygons[0].polygon", "at least 3"),
        (_mutated(["geoFence", "circles", 0, "circle", "radius"], 0), "geoFence.circles[0].circle.radius", "> 0"),
        (_mutated(["geoFence", "version"], 1), "geoFence.version", "unsupported version"),
        (_mutated(["rallyPoints", "points", 0], [60.0, 24.0]), "rallyPoints.points[0]", "3 values"),
    ],
)
def test_malformed_files_raise_plan_file_error(text: str, where: str, match: str) -> None:
    with pytest.raises(PlanFileError, match=match) as err:
        loads_plan(text)
    assert err.value.where == where
    assert isinstance(err.value, ValueError)


def test_missing_file_is_a_plan_file_error(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read") as err:
        load_plan(tmp_path / "nope.plan")
    assert err.value.path == str(tmp_path / "nope.plan")


def test_infinite_values_cannot_be_written() -> None:
    plan = QgcPlan(items=(MissionItem(16, 3, alt_m=math.inf),), planned_home=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="cannot be written"):
        dumps_plan(plan)
