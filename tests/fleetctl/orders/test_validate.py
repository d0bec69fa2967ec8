"""Order validation against the bundled Helsinki site: every reason, machine-readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fleetctl.errors import OrderRejected
from fleetctl.orders import Handoff, OrderValidator, RejectReason, parse_order
from planner.site import Site, load_site

SITE_DIR = Path(__file__).resolve().parents[3] / "sitl" / "worlds" / "helsinki"
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(SITE_DIR)


@pytest.fixture(scope="module")
def validator(site: Site) -> OrderValidator:
    return OrderValidator(site)


def order(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "order_id": "A-1", "site": "helsinki", "dropoff": "locker-pakettiautomaatti", "weight_kg": 1.0,
        "window": {"earliest": NOW.isoformat(), "latest": (NOW + timedelta(hours=1)).isoformat()},
    }
    base.update(over)
    return base


def rejected(validator: OrderValidator, raw: Any) -> OrderRejected:
    with pytest.raises(OrderRejected) as caught:
        validator.validate(parse_order(raw), NOW)
    return caught.value


def drop_point_for(site: Site, *, drone: bool, robot: bool) -> str:
    return next(n for n, d in site.drop_points.items() if d.drone_ok == drone and d.robot_ok == robot)


def test_a_valid_order_is_accepted_with_who_can_serve_it(validator: OrderValidator, site: Site) -> None:
    both = drop_point_for(site, drone=True, robot=True)
    accepted = validator.validate(parse_order(order(dropoff=both)), NOW)
    assert set(accepted.kinds) == {"drone", "robot"}
    assert accepted.depot in site.depots
    assert accepted.note == ""


def test_an_order_only_one_kind_can_serve_is_accepted_and_says_so(validator: OrderValidator, site: Site) -> None:
    robot_only = drop_point_for(site, drone=False, robot=True)
    accepted = validator.validate(parse_order(order(dropoff=robot_only)), NOW)
    assert accepted.kinds == ("robot",)
    assert accepted.note.startswith("only robots can serve it")


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe", "null", b"x" * 20_000])
def test_malformed_payloads_are_rejected_as_malformed(validator: OrderValidator, raw: Any) -> None:
    assert rejected(validator, raw).reason == RejectReason.MALFORMED


def test_a_malformed_order_names_its_fields(validator: OrderValidator) -> None:
    error = rejected(validator, order(weight_kg="heavy", priority="urgent"))
    assert error.reason == RejectReason.MALFORMED
    assert set(error.fields["errors"]) == {"weight_kg", "priority"}


@pytest.mark.parametrize(("over", "reason"), [
    ({"site": "tampere"}, RejectReason.UNKNOWN_SITE),
    ({"dropoff": "no-such-place"}, RejectReason.UNKNOWN_PLACE),
    ({"pickup_depot": "nowhere"}, RejectReason.UNKNOWN_PLACE),
    ({"dropoff": {"lat_deg": 60.25, "lon_deg": 24.9}}, RejectReason.OUTSIDE_OPERATING_AREA),
    ({"weight_kg": 50.0}, RejectReason.TOO_HEAVY_FOR_FLEET),
    ({"size": "large"}, RejectReason.TOO_LARGE_FOR_FLEET),
    ({"window": {"earliest": NOW.isoformat(), "latest": NOW.isoformat()}}, RejectReason.BAD_TIME_WINDOW),
    ({"window": {"earliest": (NOW - timedelta(hours=2)).isoformat(),
                 "latest": (NOW - timedelta(hours=1)).isoformat()}}, RejectReason.BAD_TIME_WINDOW),
    ({"window": {"earliest": (NOW + timedelta(days=30)).isoformat(),
                 "latest": (NOW + timedelta(days=30, hours=1)).isoformat()}}, RejectReason.BAD_TIME_WINDOW),
])
def test_each_reason(validator: OrderValidator, over: dict[str, Any], reason: RejectReason) -> None:
    assert rejected(validator, order(**over)).reason == reason


def test_a_handoff_no_capable_vehicle_makes_is_refused(validator: OrderValidator, site: Site) -> None:
    drone_only = drop_point_for(site, drone=True, robot=False)
    error = rejected(validator, order(dropoff=drone_only, handoff=Handoff.PIN, handoff_pin="4711"))
    assert error.reason == RejectReason.DROPOFF_UNREACHABLE  # only robots do PINs, and robots can't go there


def test_a_pin_handoff_needs_the_recipients_pin(validator: OrderValidator, site: Site) -> None:
    robot_ok = drop_point_for(site, drone=False, robot=True)
    error = rejected(validator, order(dropoff=robot_ok, handoff=Handoff.PIN))
    assert error.reason == RejectReason.HANDOFF_PIN_MISSING
    assert "handoff_pin" in str(error)


def test_a_dropoff_inside_a_no_fly_zone_and_off_the_sidewalks_is_unreachable(
        validator: OrderValidator, site: Site) -> None:
    # a point inside a zone that is far from any sidewalk: the middle of the largest zone
    zone = max(site.zones, key=lambda z: z.shape.area)
    centre = zone.shape.representative_point()
    lat, lon = site.frame.to_wgs84(centre.x, centre.y)
    if not site.area.covers(centre):
        pytest.skip(f"largest zone {zone.zone_id} lies outside the operating area")
    error = rejected(validator, order(dropoff={"lat_deg": lat, "lon_deg": lon}))
    if error.reason == RejectReason.DROPOFF_UNREACHABLE:
        assert zone.zone_id in error.fields["drone"]
    else:  # the zone is next to a sidewalk: robots could go, but not this heavy, or not this far
        assert error.reason in (RejectReason.OUT_OF_RANGE, RejectReason.DROPOFF_UNREACHABLE)


def test_a_parcel_too_heavy_for_the_kind_that_can_reach_is_out_of_range_or_refused(
        validator: OrderValidator, site: Site) -> None:
    drone_only = drop_point_for(site, drone=True, robot=False)
    heavy = max(m.max_payload_kg for m in site.vehicle_models.values() if m.kind == "drone") + 1.0
    error = rejected(validator, order(dropoff=drone_only, weight_kg=heavy))
    assert error.reason == RejectReason.OUT_OF_RANGE
    assert "carries at most" in error.detail or "heavier" in error.detail or "payload" in error.detail.lower()


def test_validation_is_fast_after_the_first_order_to_a_place(validator: OrderValidator, site: Site) -> None:
    # not a timing assert: the cache must hold one entry per (depot, drop-off, model), not per order
    name = drop_point_for(site, drone=True, robot=True)
    for i in range(50):
        validator.validate(parse_order(order(order_id=f"B-{i}", dropoff=name)), NOW)
    keys = [k for k in validator._reach if k[1] == tuple(round(c, 1) for c in site.drop_points[name].xy_m)]
    assert 1 <= len(keys) <= len(site.depots) * len(site.vehicle_models)


def test_the_fingerprint_tells_a_duplicate_from_a_conflict() -> None:
    a = parse_order(order())
    assert parse_order(order()).fingerprint() == a.fingerprint()
    assert parse_order(order(weight_kg=1.5)).fingerprint() != a.fingerprint()
