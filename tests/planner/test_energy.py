"""Energy model: monotonic in what should cost energy, the reserve check, charge arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.energy import (
    DEFAULT_CLIMB_EFFICIENCY,
    G_M_S2,
    EnergyEstimate,
    check_feasible,
    drone_leg_energy,
    drone_path_energy,
    ground_speed_m_s,
    mass_factor,
    recharge_time_s,
    reserve_wh,
    robot_leg_energy,
    soc_after,
    soc_to_wh,
    wh_to_soc,
    wind_components,
)
from planner.errors import EnergyInfeasible, PayloadTooHeavy, PlanningError, WindLimitExceeded
from planner.vehicle_model import VehicleModel

QUAD = VehicleModel(
    name="quad",
    kind="drone",
    max_payload_kg=2.5,
    cruise_speed_m_s=12.0,
    battery_wh=400.0,
    empty_mass_kg=5.0,
    hover_power_w=700.0,
    cruise_power_w=550.0,
    max_wind_m_s=11.0,
    reserve_fraction=0.25,
    charge_power_w=400.0,
)
ROVER = VehicleModel(
    name="rover",
    kind="robot",
    max_payload_kg=20.0,
    cruise_speed_m_s=1.5,
    battery_wh=1000.0,
    empty_mass_kg=40.0,
    rolling_power_w=120.0,
    idle_power_w=15.0,
)

distances = st.floats(0.0, 20_000.0)
payloads = st.floats(0.0, 2.5)
headwinds = st.floats(-8.0, 8.0)


@settings(max_examples=100, deadline=None)
@given(d=distances, extra=st.floats(1.0, 5_000.0), p=payloads, w=headwinds)
def test_drone_energy_grows_with_distance(d: float, extra: float, p: float, w: float) -> None:
    a = drone_leg_energy(QUAD, distance_m=d, payload_kg=p, headwind_m_s=w, climb_m=40.0)
    b = drone_leg_energy(QUAD, distance_m=d + extra, payload_kg=p, headwind_m_s=w, climb_m=40.0)
    assert b.energy_wh > a.energy_wh
    assert b.duration_s > a.duration_s


@settings(max_examples=100, deadline=None)
@given(d=st.floats(10.0, 20_000.0), p=st.floats(0.0, 2.0), dp=st.floats(0.01, 0.5), w=headwinds)
def test_drone_energy_grows_with_payload(d: float, p: float, dp: float, w: float) -> None:
    a = drone_leg_energy(QUAD, distance_m=d, payload_kg=p, headwind_m_s=w, climb_m=30.0, hover_s=10.0)
    b = drone_leg_energy(QUAD, distance_m=d, payload_kg=p + dp, headwind_m_s=w, climb_m=30.0, hover_s=10.0)
    assert b.energy_wh > a.energy_wh
    assert b.duration_s == pytest.approx(a.duration_s)  # payload costs power, not time


@settings(max_examples=100, deadline=None)
@given(d=st.floats(10.0, 20_000.0), w=st.floats(-8.0, 7.0), dw=st.floats(0.05, 1.0))
def test_drone_energy_grows_with_headwind(d: float, w: float, dw: float) -> None:
    a = drone_leg_energy(QUAD, distance_m=d, headwind_m_s=w)
    b = drone_leg_energy(QUAD, distance_m=d, headwind_m_s=w + dw)
    assert b.energy_wh > a.energy_wh
    assert b.duration_s > a.duration_s


def test_drone_phases_follow_the_model() -> None:
    e = drone_leg_energy(QUAD, distance_m=1200.0, payload_kg=1.0, climb_m=60.0, descent_m=30.0, hover_s=20.0)
    factor = (6.0 / 5.0) ** 1.5
    assert mass_factor(QUAD, 1.0) == pytest.approx(factor)
    hover_w = 700.0 * factor
    assert e.cruise_wh == pytest.approx(550.0 * factor * 100.0 / 3600.0)  # 1200 m at 12 m/s
    assert e.climb_wh == pytest.approx(
        (hover_w * 40.0 + 6.0 * G_M_S2 * 60.0 / DEFAULT_CLIMB_EFFICIENCY) / 3600.0
    )
    assert e.descent_wh == pytest.approx(hover_w * 30.0 / 3600.0)
    assert e.hover_wh == pytest.approx(hover_w * 20.0 / 3600.0)
    assert e.energy_wh == pytest.approx(e.climb_wh + e.cruise_wh + e.descent_wh + e.hover_wh)
    assert e.duration_s == pytest.approx(40.0 + 100.0 + 30.0 + 20.0)


def test_climbing_costs_more_than_hovering_the_same_time() -> None:
    climb = drone_leg_energy(QUAD, distance_m=0.0, climb_m=30.0)
    hover = drone_leg_energy(QUAD, distance_m=0.0, hover_s=climb.duration_s)
    assert climb.energy_wh > hover.energy_wh


def test_tailwind_saves_but_a_round_trip_in_wind_costs_more() -> None:
    calm = drone_leg_energy(QUAD, distance_m=3000.0)
    tail = drone_leg_energy(QUAD, distance_m=3000.0, headwind_m_s=-5.0)
    head = drone_leg_energy(QUAD, distance_m=3000.0, headwind_m_s=5.0)
    assert tail.energy_wh < calm.energy_wh < head.energy_wh
    assert tail.energy_wh + head.energy_wh > 2 * calm.energy_wh
    out_and_back = [(0.0, 0.0), (0.0, 3000.0), (0.0, 0.0)]
    windy = drone_path_energy(QUAD, out_and_back, wind_speed_m_s=5.0, wind_from_deg=0.0)
    assert windy.cruise_wh == pytest.approx(head.cruise_wh + tail.cruise_wh)
    assert drone_path_energy(QUAD, out_and_back).cruise_wh == pytest.approx(2 * calm.cruise_wh)


def test_wind_components_and_crosswind_crab() -> None:
    head, cross = wind_components(track_deg=90.0, wind_speed_m_s=6.0, wind_from_deg=90.0)
    assert (head, cross) == pytest.approx((6.0, 0.0))
    head, cross = wind_components(track_deg=0.0, wind_speed_m_s=6.0, wind_from_deg=270.0)
    assert head == pytest.approx(0.0, abs=1e-9)
    assert cross == pytest.approx(6.0)
    assert ground_speed_m_s(QUAD, crosswind_m_s=6.0) == pytest.approx(math.sqrt(144.0 - 36.0))
    crosswind = drone_leg_energy(QUAD, distance_m=1000.0, crosswind_m_s=6.0)
    assert crosswind.energy_wh > drone_leg_energy(QUAD, distance_m=1000.0).energy_wh


def test_wind_beyond_the_limit_is_refused() -> None:
    with pytest.raises(WindLimitExceeded) as caught:
        drone_leg_energy(QUAD, distance_m=100.0, headwind_m_s=11.5)
    assert caught.value.limit_m_s == 11.0
    assert isinstance(caught.value, PlanningError)
    hover_only = drone_leg_energy(QUAD, distance_m=0.0, hover_s=5.0, headwind_m_s=30.0)
    assert hover_only.cruise_wh == 0.0


def test_payload_limits_and_kind_mismatch() -> None:
    with pytest.raises(PayloadTooHeavy, match="exceeds"):
        drone_leg_energy(QUAD, distance_m=100.0, payload_kg=3.0)
    with pytest.raises(ValueError, match="not a drone"):
        drone_leg_energy(ROVER, distance_m=100.0)
    with pytest.raises(ValueError, match="not a robot"):
        robot_leg_energy(QUAD, distance_m=100.0)
    with pytest.raises(ValueError, match="distance_m"):
        drone_leg_energy(QUAD, distance_m=-1.0)


@settings(max_examples=100, deadline=None)
@given(
    d=st.floats(0.0, 10_000.0), extra=st.floats(1.0, 1_000.0), p=st.floats(0.0, 19.0), dp=st.floats(0.1, 1.0)
)
def test_robot_energy_grows_with_distance_and_payload(d: float, extra: float, p: float, dp: float) -> None:
    base = robot_leg_energy(ROVER, distance_m=d, payload_kg=p)
    assert robot_leg_energy(ROVER, distance_m=d + extra, payload_kg=p).energy_wh > base.energy_wh
    heavier = robot_leg_energy(ROVER, distance_m=d + extra, payload_kg=p + dp)
    assert heavier.energy_wh > robot_leg_energy(ROVER, distance_m=d + extra, payload_kg=p).energy_wh


def test_robot_payload_scales_mildly_and_idle_costs() -> None:
    empty = robot_leg_energy(ROVER, distance_m=1500.0)
    full = robot_leg_energy(ROVER, distance_m=1500.0, payload_kg=20.0)
    assert empty.duration_s == pytest.approx(1000.0)
    assert empty.drive_wh == pytest.approx(120.0 * 1000.0 / 3600.0)
    assert full.drive_wh / empty.drive_wh == pytest.approx(1.25)  # half the power scales with mass
    waiting = robot_leg_energy(ROVER, distance_m=1500.0, idle_s=600.0)
    assert waiting.idle_wh - empty.idle_wh == pytest.approx(15.0 * 600.0 / 3600.0)
    assert waiting.duration_s == pytest.approx(1600.0)


def test_estimates_add_up() -> None:
    out = drone_leg_energy(QUAD, distance_m=2000.0, payload_kg=2.0, climb_m=40.0, hover_s=15.0)
    back = drone_leg_energy(QUAD, distance_m=2000.0, descent_m=40.0)
    total = out + back
    assert total.energy_wh == pytest.approx(out.energy_wh + back.energy_wh)
    assert total.duration_s == pytest.approx(out.duration_s + back.duration_s)
    assert total.hover_wh == out.hover_wh
    assert EnergyEstimate.zero() + out == out


def test_reserve_check() -> None:
    assert reserve_wh(QUAD) == pytest.approx(100.0)
    assert check_feasible(QUAD, 250.0) == pytest.approx(50.0)
    with pytest.raises(EnergyInfeasible) as caught:
        check_feasible(QUAD, 301.0)
    assert caught.value.reserve_wh == pytest.approx(100.0)
    assert caught.value.needed_wh == pytest.approx(301.0)
    # A custom reserve and a partly drained battery.
    assert check_feasible(QUAD, 301.0, reserve_fraction=0.1) == pytest.approx(59.0)
    with pytest.raises(EnergyInfeasible):
        check_feasible(QUAD, 150.0, available_wh=200.0)
    leg = drone_leg_energy(QUAD, distance_m=1000.0)
    assert check_feasible(QUAD, leg) == pytest.approx(300.0 - leg.energy_wh)
    with pytest.raises(EnergyInfeasible):  # 60 km is beyond this quad's battery
        check_feasible(QUAD, drone_leg_energy(QUAD, distance_m=60_000.0))


def test_state_of_charge_and_recharge_time() -> None:
    assert soc_to_wh(QUAD, 50.0) == pytest.approx(200.0)
    assert wh_to_soc(QUAD, 100.0) == pytest.approx(25.0)
    assert soc_after(QUAD, 80.0, 40.0) == pytest.approx(70.0)
    assert soc_after(QUAD, 80.0, EnergyEstimate(energy_wh=40.0, duration_s=1.0)) == pytest.approx(70.0)
    assert recharge_time_s(QUAD, 25.0) == pytest.approx(300.0 / 400.0 * 3600.0)
    assert recharge_time_s(QUAD, 25.0, 50.0) == pytest.approx(100.0 / 400.0 * 3600.0)
    assert recharge_time_s(QUAD, 90.0, 50.0) == 0.0
    with pytest.raises(ValueError, match="soc_percent"):
        soc_to_wh(QUAD, 120.0)
