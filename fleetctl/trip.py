"""One delivery trip estimated for each vehicle kind: path, time, energy and the reserve check.

This is the glue `fleetctl plan` prints and the dispatcher will price sorties with: the
planner answers geometry and physics, this module puts an outbound leg (with the parcel), the
hand-over and the way back (empty) together for one vehicle model.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.energy import (
    EnergyEstimate,
    check_feasible,
    drone_leg_energy,
    drone_path_energy,
    robot_leg_energy,
)
from planner.errors import PlanningError
from planner.flight import FlightPlan, FlightPlanner, plan_flight
from planner.geo import FloatArray
from planner.sidewalk import SidewalkRoute
from planner.site import Site
from planner.vehicle_model import VehicleModel
from planner.wind import Wind

#: Time a drone hovers over the drop point while the winch lowers and releases the parcel.
DRONE_RELEASE_HOVER_S = 30.0
#: Time a robot waits at the door for the recipient (the hand-off window it plans energy for).
ROBOT_HANDOFF_WAIT_S = 180.0


@dataclass(frozen=True)
class TripEstimate:
    """One vehicle model's trip from `origin` to `destination` and back."""

    kind: str
    model: str
    points_xy_m: FloatArray
    one_way_m: float
    outbound_s: float
    round_trip_s: float
    outbound_wh: float
    round_trip_wh: float
    battery_used_pct: float
    margin_wh: float
    cruise_alt_m: float | None = None


def _drone_energy(plan: FlightPlan, model: VehicleModel, payload_kg: float, wind: Wind, *, reverse: bool) -> EnergyEstimate:
    """Climb, cruise the path (either way) with the wind per segment, descend."""
    points = plan.path.points[::-1] if reverse else plan.path.points
    return drone_path_energy(model, points, payload_kg=payload_kg, climb_m=plan.cruise_alt_m,
                             descent_m=plan.cruise_alt_m, wind_speed_m_s=wind.speed_m_s,
                             wind_from_deg=wind.from_deg)


def drone_trip(
    site: Site,
    planner: FlightPlanner,
    start_xy: tuple[float, float],
    goal_xy: tuple[float, float],
    model: VehicleModel,
    *,
    payload_kg: float,
    wind: Wind,
    cruise_alt_m: float | None = None,
) -> tuple[TripEstimate, FlightPlan]:
    """Out with the parcel, hover to release it, back empty; raises PlanningError subtypes."""
    alt_m = site.cruise_layers_m[0] if cruise_alt_m is None else cruise_alt_m
    east, north = wind.east_north_m_s
    plan = plan_flight(planner, start_xy, goal_xy, model, alt_m, wind_east_m_s=east, wind_north_m_s=north)
    return drone_trip_on(plan, model, payload_kg=payload_kg, wind=wind), plan


def drone_trip_on(plan: FlightPlan, model: VehicleModel, *, payload_kg: float, wind: Wind) -> TripEstimate:
    """The trip along an already planned flight (to price several payloads without replanning)."""
    out = _drone_energy(plan, model, payload_kg, wind, reverse=False)
    out = out + drone_leg_energy(model, distance_m=0.0, payload_kg=payload_kg, hover_s=DRONE_RELEASE_HOVER_S)
    back = _drone_energy(plan, model, 0.0, wind, reverse=True)
    total = out + back
    margin_wh = check_feasible(model, total)
    return TripEstimate(
        kind="drone", model=model.name, points_xy_m=plan.path.points, one_way_m=plan.horizontal_m,
        outbound_s=out.duration_s, round_trip_s=total.duration_s, outbound_wh=out.energy_wh,
        round_trip_wh=total.energy_wh, battery_used_pct=100.0 * total.energy_wh / model.battery_wh,
        margin_wh=margin_wh, cruise_alt_m=plan.cruise_alt_m,
    )


def robot_trip(
    site: Site,
    start_xy: tuple[float, float],
    goal_xy: tuple[float, float],
    model: VehicleModel,
    *,
    payload_kg: float,
) -> tuple[TripEstimate, SidewalkRoute]:
    """Drive out with the parcel, wait for the hand-off, drive back empty."""
    route = site.sidewalks.route(start_xy, goal_xy)
    return robot_trip_on(route, model, payload_kg=payload_kg), route


def robot_trip_on(route: SidewalkRoute, model: VehicleModel, *, payload_kg: float) -> TripEstimate:
    """The trip along an already found sidewalk route."""
    out = robot_leg_energy(model, distance_m=route.length_m, payload_kg=payload_kg, idle_s=ROBOT_HANDOFF_WAIT_S)
    back = robot_leg_energy(model, distance_m=route.length_m, payload_kg=0.0)
    total = out + back
    margin_wh = check_feasible(model, total)
    return TripEstimate(
        kind="robot", model=model.name, points_xy_m=route.points, one_way_m=route.length_m,
        outbound_s=out.duration_s - ROBOT_HANDOFF_WAIT_S, round_trip_s=total.duration_s,
        outbound_wh=out.energy_wh, round_trip_wh=total.energy_wh,
        battery_used_pct=100.0 * total.energy_wh / model.battery_wh, margin_wh=margin_wh,
    )


def first_model(site: Site, kind: str) -> VehicleModel | None:
    """The site's first vehicle model of `kind`, or None when the site has none of that kind."""
    return next((m for m in site.vehicle_models.values() if m.kind == kind), None)


__all__ = ["PlanningError", "TripEstimate", "Wind", "drone_trip", "drone_trip_on", "first_model", "robot_trip",
           "robot_trip_on"]
