"""From (order, vehicle) to a SortiePlan: the path around the zones or along the sidewalks, the
times and the energy, checked against the vehicle's battery now. Pure and synchronous (it runs the
planner), so the service calls it in a worker thread."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from fleetctl.sorties.plan import Kind, SortiePlan, mission
from fleetctl.trip import TripEstimate, Wind, drone_trip, robot_trip
from planner.energy import soc_to_wh
from planner.errors import EnergyInfeasible
from planner.flight import FlightPlanner
from planner.geo import FloatArray
from planner.site import Site
from planner.vehicle_model import VehicleModel


@dataclass(frozen=True)
class VehicleSlot:
    """A vehicle as dispatch sees it: who, what, where it starts from, how full its battery is."""

    vehicle_id: str
    model: VehicleModel
    depot: str
    start_xy_m: tuple[float, float]
    battery_percent: float


def plan_sortie(site: Site, flight: FlightPlanner, order_id: str, dropoff_xy_m: tuple[float, float],
                vehicle: VehicleSlot, payload_kg: float, *, wind: Wind | None = None,
                cruise_alt_m: float | None = None) -> SortiePlan:
    """A plan, or a PlanningError subtype (NoRoute, InsideNoFlyZone, EnergyInfeasible, ...)."""
    wind = wind or Wind(0.0, 0.0)
    model = vehicle.model
    trip: TripEstimate
    if model.kind == "drone":
        trip, _ = drone_trip(site, flight, vehicle.start_xy_m, dropoff_xy_m, model, payload_kg=payload_kg,
                             wind=wind, cruise_alt_m=cruise_alt_m)
    else:
        trip, _ = robot_trip(site, vehicle.start_xy_m, dropoff_xy_m, model, payload_kg=payload_kg)
    available_wh = soc_to_wh(model, max(0.0, min(100.0, vehicle.battery_percent)))
    reserve_wh = model.battery_wh * model.reserve_fraction
    if trip.round_trip_wh > available_wh - reserve_wh:
        raise EnergyInfeasible(trip.round_trip_wh, available_wh, reserve_wh)
    out = _wgs(site, trip.points_xy_m)
    kind: Kind = "drone" if model.kind == "drone" else "robot"
    plan = SortiePlan(
        sortie_id=f"S-{uuid.uuid4().hex[:12]}", order_id=order_id, vehicle_id=vehicle.vehicle_id, kind=kind,
        depot=vehicle.depot, out_wgs84=out, back_wgs84=tuple(reversed(out)),
        cruise_alt_m=trip.cruise_alt_m or 0.0, speed_m_s=model.cruise_speed_m_s, outbound_s=trip.outbound_s,
        round_trip_s=trip.round_trip_s, energy_wh=trip.round_trip_wh, battery_wh=model.battery_wh,
        reserve_percent=100.0 * model.reserve_fraction,
    )
    return mission(plan)[1]  # with the seqs PX4 will report, so a stored plan can be followed


def _wgs(site: Site, points_xy_m: FloatArray) -> tuple[tuple[float, float], ...]:
    pts = site.frame.points_to_wgs84(np.asarray(points_xy_m, dtype=np.float64))
    return tuple((float(a), float(b)) for a, b in pts)
