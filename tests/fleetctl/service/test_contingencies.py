"""Contingencies end to end (orders in through Mosquitto, status read back from it): an order
cancelled while its drone flies comes back with the parcel."""

from __future__ import annotations

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

pytestmark = [pytest.mark.sitl]
SITE = helsinki()


async def test_an_order_cancelled_in_flight_comes_back_with_its_parcel(sitl_options: SitlChoice,
                                                                       tmp_path: Path) -> None:
    far = near_drop_point(SITE, "erottaja", "drone", lo_m=600.0, hi_m=1500.0)
    async with site_sim(sitl_options, SITE, ["quad-1"]) as sim:
        settings = settings_for(tmp_path, sim)
        clock = ScaledClock(sim.speed, settings.sim_epoch)
        async with (running_service(settings) as service, producer(settings.site_id or "", clock) as p,
                    tracked(service, clock)):
            assert service.operator is not None
            await p.publish(p.order("C-1", far))
            await p.wait(lambda q: q.status.get("C-1", {}).get("state") == "in_transit", 60.0 / sim.speed + 60.0,
                         "C-1 on its way")
            await service.operator.cancel("C-1", reason="the customer cancelled", by="test")
            await p.wait(lambda q: q.status.get("C-1", {}).get("state") == "returned", 300.0 / sim.speed + 60.0,
                         "C-1's parcel back at the depot")
            record = await service.store.get_order("C-1")
            assert not record.parcel_on_board
            steps = [e.kind.removeprefix("order.") for e in await service.store.order_events("C-1")]
            assert steps[-3:] == ["cancelled", "returning", "returned"]
            assert "delivered" not in steps
            assert "operator.recall" in steps
