"""Each expectation checked on made-up facts (fast, no simulator), the JUnit XML they become, and
which actions real PX4 skips."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import shapely

from fleetctl.orders.lifecycle import OrderState
from fleetctl.scenario.checks import (
    Check,
    Facts,
    all_orders_terminal,
    check_all,
    no_double_delivery,
    no_zone_incursion,
    on_time_at_least,
    order_ends,
    order_went_through,
    separation_at_least,
)
from fleetctl.scenario.junit import write_junit
from fleetctl.scenario.model import Expect, parse_scenario
from fleetctl.scenario.timeline import Outcome, label, skip_reason
from fleetctl.store.records import EventRecord, OrderRecord
from fleetctl.tracks import Track
from planner.airspace import NoFlyZone

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def order(order_id: str, state: str, reason: str | None = None) -> OrderRecord:
    return OrderRecord(order_id=order_id, state=OrderState(state), site="helsinki", fingerprint="f", payload=None,
                       reason=reason, detail=None, kinds=("drone",), depot="erottaja", dropoff_xy_m=(0.0, 0.0),
                       priority="standard", window_earliest=T0, window_latest=T0 + timedelta(hours=1),
                       vehicle_id="quad-1", sortie_id=None, eta=None, parcel_on_board=False, attempts=1,
                       created_at=T0, updated_at=T0)


def event(seq: int, order_id: str, step: str, **data: Any) -> EventRecord:
    return EventRecord(seq, T0 + timedelta(seconds=seq), "order", order_id, f"order.{step}", data)


def track(vehicle_id: str, points: list[tuple[float, float, float, float]]) -> Track:
    t = Track(vehicle_id, "drone")
    for t_s, x, y, alt in points:
        t.t_s.append(T0.timestamp() + t_s)
        t.x_m.append(x)
        t.y_m.append(y)
        t.alt_m.append(alt)
    return t


def test_orders_terminal_delivered_once_and_their_ends() -> None:
    orders = {o.order_id: o for o in (order("A", "delivered"), order("B", "returned", "handoff_timeout"),
                                      order("C", "in_transit"))}
    check = all_orders_terminal(orders)
    assert check.verdict == "failed"
    assert "C (in_transit)" in check.message
    assert "1 of 3" in check.message
    del orders["C"]
    assert all_orders_terminal(orders).verdict == "passed"
    assert order_ends(orders, "B", ["returned", "failed"]).verdict == "passed"
    assert "reason handoff_timeout" in order_ends(orders, "B", ["returned"]).message
    assert order_ends(orders, "A", ["returned"]).verdict == "failed"
    assert order_ends(orders, "Z", ["delivered"]).message == "no such order in the store"

    events = [event(1, "A", "accepted"), event(2, "A", "delivered"), event(3, "B", "delivered"),
              event(4, "B", "delivered")]
    twice = no_double_delivery(events)
    assert twice.verdict == "failed"
    assert "B (2x)" in twice.message
    assert no_double_delivery(events[:3]).verdict == "passed"
    story = [event(1, "B", "accepted"), event(2, "B", "in_transit"), event(3, "B", "failed"),
             event(4, "B", "returning"), event(5, "B", "returned")]
    assert order_went_through(story, "B", ["returning", "returned"]).verdict == "passed"
    missed = order_went_through(story, "B", ["cancelled"])
    assert missed.verdict == "failed"
    assert missed.message.startswith("never cancelled; its story: ")
    assert "accepted -> in_transit -> failed -> returning -> returned" in missed.message


def test_zone_incursions_count_added_zones_after_their_grace() -> None:
    box = shapely.Polygon([(0, 0), (100, 0), (100, 100), (0, 100)])
    static = NoFlyZone("school", "school", box)
    added = NoFlyZone("fire", "fire", shapely.Polygon([(200, 0), (300, 0), (300, 100), (200, 100)]),
                      active_from_s=T0.timestamp() + 100.0)
    # through the fire zone 20 s after it was added, then well after, never through the school
    flight = track("quad-1", [(0, -50, -50, 30), (110, 250, 50, 30), (112, 260, -20, 30), (200, 250, 50, 30)])
    found = no_zone_incursion([flight], [static], [added], grace_s=30.0)
    assert found.verdict == "failed"
    assert "quad-1 in fire" in found.message
    early = track("quad-1", [(0, -50, -50, 30), (110, 250, 50, 30), (112, 260, -20, 30)])
    assert no_zone_incursion([early], [static], [added], grace_s=30.0).verdict == "passed"
    assert no_zone_incursion([early], [static], [added], grace_s=0.0).verdict == "failed"
    low = track("quad-1", [(0, 50, 50, 1.0)])  # a drone on the ground inside a zone's band? floor 0: counts
    assert no_zone_incursion([low], [static], [], grace_s=0.0).verdict == "failed"


def test_separation_and_on_time() -> None:
    a = track("quad-1", [(0, 0, 0, 30), (10, 100, 0, 30)])
    b = track("quad-2", [(0, 0, 8, 32), (10, 100, 8, 32)])
    c = track("quad-3", [(0, 0, 3, 80), (10, 100, 3, 80)])  # above: another layer, does not count
    assert separation_at_least([a, b, c], 5.0).verdict == "passed"
    tight = separation_at_least([a, b, c], 10.0)
    assert tight.verdict == "failed"
    assert "8.0 m (quad-1/quad-2" in tight.message
    assert separation_at_least([a], 10.0).verdict == "passed"
    assert on_time_at_least({"on_time_rate": 0.75, "on_time": 3}, 0.8).verdict == "failed"
    assert on_time_at_least({"on_time_rate": 0.8, "on_time": 4}, 0.8).verdict == "passed"
    assert on_time_at_least({"on_time_rate": None}, 0.8).message == "nothing was delivered"


def test_check_all_follows_the_expectations_and_the_actions() -> None:
    s = parse_scenario({"name": "x", "orders": {"per_hour": 1, "hours": 1},
                        "expect": {"all_orders_terminal": True, "no_zone_incursion": False, "delivered_min": 1,
                                   "orders": {"A": "delivered"}, "orders_went_through": {"A": ["delivered"]}},
                        "actions": [{"do": "gripper_jam", "vehicle": "quad-1"},
                                    {"do": "link_loss", "vehicle": "quad-1", "duration_s": 30, "at_s": 60}]})
    outcomes = [Outcome(0, label(s.actions[0]), "done", 0.0), Outcome(1, label(s.actions[1]), "skipped",
                                                                      detail="PX4 SITL: no")]
    facts = Facts({"A": order("A", "delivered")}, [event(1, "A", "delivered")], [], [], [], {}, outcomes)
    checks = check_all(s.expect, facts)
    assert [c.name for c in checks] == [
        "all orders terminal", "no order delivered twice", "at least 1 delivered", "order A ends delivered",
        "order A went through delivered", "action 1: t=0s gripper_jam quad-1 (on=True)",
        "action 2: t=60s link_loss quad-1 (duration_s=30.0)"]
    assert [c.verdict for c in checks] == ["passed"] * 6 + ["skipped"]
    assert all(c.ok for c in checks)
    failed = check_all(Expect(), Facts({}, [], [], [], [], {}, [Outcome(0, "t=0s cancel A", "failed", detail="no")]))
    assert failed[-1].verdict == "failed"
    assert not failed[-1].ok
    pending = check_all(Expect(), Facts({}, [], [], [], [], {}, [Outcome(0, "t=9s cancel A")]))
    assert pending[-1].message == "never done: the run ended first"


def test_px4_skips_simulator_faults_only() -> None:
    s = parse_scenario({"name": "x", "orders": {"per_hour": 1, "hours": 1}, "actions": [
        {"do": "gripper_jam", "vehicle": "quad-1"}, {"do": "cancel", "order": "A"},
        {"do": "add_zone", "zone_id": "z", "polygon_xy_m": [[0, 0], [10, 0], [10, 10]]},
        {"do": "wind", "speed_m_s": 5, "from_deg": 90}]})
    assert [skip_reason(a, "builtin") for a in s.actions] == [None] * 4
    reasons = [skip_reason(a, "px4") for a in s.actions]
    assert reasons[1] is None
    assert reasons[2] is None
    assert reasons[0] is not None
    assert reasons[0].startswith("PX4 SITL")
    assert reasons[3] is not None


def test_junit_has_one_case_per_check_with_failures_and_skips(tmp_path: Path) -> None:
    checks = [Check("all orders terminal", "passed", "2 orders"), Check("order A ends returned", "failed",
                                                                         "ended delivered <&>"),
              Check("action 1: t=0s gripper_jam quad-1", "skipped", "PX4 SITL: no gripper")]
    path = write_junit(tmp_path / "j" / "junit.xml", "gripper-jam", checks, time_s=12.34,
                       properties={"speed": "20"})
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.attrib | {} == {"name": "gripper-jam", "tests": "3", "failures": "1", "errors": "0", "skipped": "1",
                                 "time": "12.3"}
    cases = suite.findall("testcase")
    assert [c.attrib["name"] for c in cases] == [c.name for c in checks]
    assert all(c.attrib["classname"] == "scenario.gripper-jam" for c in cases)
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "ended delivered <&>"
    skipped = cases[2].find("skipped")
    assert skipped is not None
    assert skipped.attrib["message"] == "PX4 SITL: no gripper"
    assert cases[0].find("failure") is None
    assert cases[0].find("skipped") is None
    props = suite.find("properties")
    assert props is not None
    assert props[0].attrib == {"name": "speed", "value": "20"}


def test_zones_added_during_a_run_come_back_from_bus_or_store_events_and_are_drawn(tmp_path: Path) -> None:
    from fleetctl.bus import EventMessage
    from fleetctl.demo.added_zones import zones_from_events
    from fleetctl.mapview import render_site_map
    from planner.site import load_site
    from sitl.worlds import bundled_site_path

    square = [[0.0, 0.0], [40.0, 0.0], [40.0, 40.0], [0.0, 40.0], [0.0, 0.0]]
    stored = [EventRecord(1, T0, "zone", "fire-1", "zone.added", {"reason": "fire", "shape_xy_m": square}),
              EventRecord(2, T0 + timedelta(minutes=5), "zone", "fire-1", "zone.removed", {}),
              EventRecord(3, T0, "zone", "crane", "zone.added", {"shape_xy_m": square, "ceiling_m": 60.0})]
    on_bus = [EventMessage(seq=e.seq, at=e.at, entity=e.entity, entity_id=e.entity_id, kind=e.kind, data=e.data)
              for e in stored]
    for events in (stored, on_bus):
        fire, crane = zones_from_events(events)
        assert (fire.zone_id, fire.reason, fire.shape.area) == ("fire-1", "fire", 1600.0)
        assert fire.active_until_s == (T0 + timedelta(minutes=5)).timestamp()
        assert crane.active_until_s is None
        assert crane.ceiling_m == 60.0
    site = load_site(bundled_site_path("helsinki"))
    with_zones = render_site_map(site, tmp_path / "with.png", added_zones=zones_from_events(stored))
    without = render_site_map(site, tmp_path / "without.png")
    assert with_zones.read_bytes() != without.read_bytes()
