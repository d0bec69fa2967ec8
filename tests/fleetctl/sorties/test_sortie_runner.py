"""One sortie end to end over MAVLink: a quad and a rover at a Helsinki depot each deliver one parcel.
Runs on the built-in simulator, or on real PX4 SITL with `--sitl px4 --px4-dir BUILD`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from vehicles_harness import SitlChoice, fleet_under_test

from fleetctl.clock import ScaledClock
from fleetctl.orders.lifecycle import OrderState
from fleetctl.sorties import SortiePhase, SortiePlan, SortieRunner, VehicleSlot, fence_for, plan_sortie
from planner.flight import FlightPlanner
from planner.site import Site, load_site

pytestmark = [pytest.mark.sitl]
SITE = load_site(Path(__file__).resolve().parents[3] / "sitl" / "worlds" / "helsinki")
S = OrderState


@dataclass
class Recorder:
    phases: list[tuple[SortiePhase, str]] = field(default_factory=list)
    steps: list[tuple[OrderState, str | None, dict[str, Any] | None]] = field(default_factory=list)
    etas: list[datetime] = field(default_factory=list)

    async def sortie_phase(self, plan: SortiePlan, phase: SortiePhase, detail: str = "") -> None:
        self.phases.append((phase, detail))

    async def order_step(self, plan: SortiePlan, state: OrderState, *, reason: str | None = None,
                         detail: str = "", eta: datetime | None = None,
                         proof: dict[str, Any] | None = None) -> None:
        self.steps.append((state, reason, proof))

    async def order_eta(self, plan: SortiePlan, eta: datetime) -> None:
        self.etas.append(eta)


def nearby_drop(site: Site, depot: str, kind: str, lo_m: float, hi_m: float) -> str:
    xy = site.depots[depot].xy_m
    ok = [(math.dist(xy, d.xy_m), n) for n, d in site.drop_points.items()
          if (d.drone_ok if kind == "drone" else d.robot_ok) and lo_m <= math.dist(xy, d.xy_m) <= hi_m]
    return min(ok)[1]


async def test_a_quad_and_a_rover_each_deliver_and_come_home(sitl_options: SitlChoice) -> None:
    depot = SITE.depots["erottaja"]
    homes = [(p.position.lat_deg, p.position.lon_deg, p.position.alt_amsl_m) for p in depot.pads[:2]]
    async with fleet_under_test(sitl_options, ["quad", "rover"], homes=homes,
                                vehicle_ids=["quad-1", "robot-1"]) as env:
        clock = ScaledClock(env.speed_factor)
        flight = FlightPlanner(SITE.airspace, max_alt_m=max(SITE.cruise_layers_m))
        runs = []
        for vehicle, model, kind in ((env.vehicles[0], "quad-x4", "drone"), (env.vehicles[1], "sidewalk-bot", "robot")):
            drop = SITE.drop_points[nearby_drop(SITE, "erottaja", kind, 120.0, 250.0)]
            slot = VehicleSlot(vehicle.vehicle_id, SITE.vehicle_model(model), "erottaja", depot.xy_m,
                               vehicle.state.battery_percent or 100.0)
            plan = plan_sortie(SITE, flight, f"order-{kind}", drop.xy_m, slot, payload_kg=1.0)
            recorder = Recorder()
            fence = fence_for(SITE, SITE.airspace, plan)
            runs.append((SortieRunner(plan, vehicle, fence, recorder, clock), recorder, drop))
        import asyncio

        results = await asyncio.gather(*(runner.run() for runner, _, _ in runs))
        assert results == [SortiePhase.DONE, SortiePhase.DONE]
        for _runner, recorder, _drop in runs:
            states = [s for s, _, _ in recorder.steps]
            assert states == [S.LOADING, S.IN_TRANSIT, S.DELIVERING, S.DELIVERED]
            proof = recorder.steps[-1][2]
            assert proof is not None
            assert proof["within_radius"], proof
            assert [p for p, _ in recorder.phases][-2:] == [SortiePhase.LANDED, SortiePhase.DONE]
            assert recorder.etas, "the ETA is told from where the vehicle is"
        for vehicle in env.vehicles:
            assert not vehicle.state.armed
