"""Dispatch in the running service: the solver's ETAs on the status of waiting orders, and the
operator's overrides (pin, ground, pause/resume, cancel), each taking effect and each an event."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from service_harness import (
    helsinki,
    near_drop_point,
    producer,
    running_service,
    settings_for,
    site_sim,
    tracked,
)
from vehicles_harness import SitlChoice

from fleetctl.clock import ScaledClock
from fleetctl.errors import IllegalTransition, UnknownOrder, UnknownVehicleId
from planner.airspace import NoFlyZone

pytestmark = [pytest.mark.sitl]
SITE = helsinki()
VEHICLES = ["quad-1", "quad-2"]  # both at erottaja


async def test_overrides_and_etas(sitl_options: SitlChoice, tmp_path: Path) -> None:
    drop = near_drop_point(SITE, "erottaja", "drone")
    async with site_sim(sitl_options, SITE, VEHICLES) as sim:
        settings = settings_for(tmp_path, sim)
        clock = ScaledClock(sim.speed, settings.sim_epoch)
        async with (running_service(settings) as service, producer(settings.site_id or "", clock) as p,
                    tracked(service, clock)):
            operator = service.operator
            assert operator is not None
            store = service.store
            # Ready to go: heard, healthy, home set (real PX4 takes a while after boot).
            await p.wait(lambda q: {"quad-1", "quad-2"} <= set(service.rule.free_vehicles()), 60.0, "both vehicles free")
            # Paused: orders are taken in and forecast, but nothing starts.
            await operator.pause_dispatch(by="test")
            await operator.ground("quad-1", reason="rotor check", by="test")
            later = clock.now() + timedelta(minutes=20)
            await p.publish(p.order("P-1", drop, window={"earliest": later.isoformat(),
                                                         "latest": (later + timedelta(hours=1)).isoformat()}))
            await p.publish(p.order("P-2", drop))
            await p.publish(p.order("P-3", drop))
            await p.wait(lambda q: all(q.status.get(i, {}).get("state") == "accepted" for i in ("P-1", "P-2", "P-3")),
                         10.0, "accepted")
            await operator.pin("P-2", "quad-2", by="test")
            with pytest.raises(UnknownVehicleId):
                await operator.pin("P-2", "quad-9")
            with pytest.raises(UnknownOrder):
                await operator.cancel("nope")
            await operator.cancel("P-3", by="test")
            # The forecast is published while dispatch is paused: P-1 waits for its window.
            await service.rule()  # one round by hand (pausing stops the dispatcher's, not the rule)
            await p.wait(lambda q: q.status.get("P-1", {}).get("eta") is not None, 10.0, "P-1's ETA")
            eta = datetime.fromisoformat(p.status["P-1"]["eta"])
            assert eta >= later - timedelta(seconds=61)
            p2 = await store.get_order("P-2")  # launched by that round (due now) and moving on
            assert p2.state not in ("received", "accepted")
            assert p2.vehicle_id == "quad-2"
            await operator.resume_dispatch(by="test")
            await p.wait(lambda q: q.status.get("P-2", {}).get("state") == "delivered", 240.0 / sim.speed + 60.0,
                         "P-2 delivered by quad-2")
            assert p.status["P-2"]["vehicle_id"] == "quad-2"
            assert p.status["P-3"]["state"] == "cancelled"
            with pytest.raises(IllegalTransition):
                await operator.cancel("P-2")
            grounded = {v.vehicle_id: v.grounded for v in await store.list_vehicles()}
            assert (grounded["quad-1"], grounded["quad-2"]) == (True, False)
            p1 = await store.get_order("P-1")
            assert p1.state == "accepted"  # its window has not opened: nobody went yet
            assert p1.vehicle_id is None
            await operator.unground("quad-1", by="test")
            # A zone over the drop point (an emergency): no drone may go there until it is lifted.
            x_m, y_m = SITE.drop_points[drop].xy_m
            await operator.pause_dispatch(by="test")
            assert await operator.add_zone(NoFlyZone.make_circle("heli-1", "emergency helicopter", x_m, y_m, 60.0),
                                           by="test") >= 1
            await p.publish(p.order("Z-1", drop))
            await p.wait(lambda q: q.status.get("Z-1", {}).get("state") == "accepted", 10.0, "Z-1 accepted")
            await service.rule()
            assert "Z-1" in service.rule.last.unplaced  # type: ignore[union-attr]
            await operator.remove_zone("heli-1", by="test")
            await operator.resume_dispatch(by="test")  # (a landing drone may hold the depot's airspace a while)
            await p.wait(lambda q: q.status.get("Z-1", {}).get("state") not in (None, "accepted"),
                         120.0 / sim.speed + 30.0, "Z-1 on its way once the zone is lifted")
            kinds = [e.kind for e in await store.events_after(0, limit=10_000)]
            for kind in ("dispatch.paused", "dispatch.resumed", "vehicle.grounded", "vehicle.ungrounded",
                         "order.pinned", "operator.pin", "order.cancelled", "order.eta", "zone.added", "zone.removed"):
                assert kind in kinds, kind
            assert service.rule.stats.full_rounds >= 1
