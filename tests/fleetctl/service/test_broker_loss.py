"""Broker loss: the service keeps running while its broker is down (a vehicle delivers meanwhile),
reconnects with backoff when it is back, and publishes what changed meanwhile; an order
acknowledged before the outage is not lost. With the service's own Mosquitto, accounts and ACL
from the shipped examples (fleetctl/bus/examples)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bus_harness import PASSWORDS, running_mosquitto
from service_harness import helsinki, near_drop_point, producer, running_service, settings_for, site_sim
from vehicles_harness import SitlChoice

from fleetctl.clock import ScaledClock

pytestmark = [pytest.mark.sitl]
SITE = helsinki()


async def test_the_service_rides_out_a_broker_outage(sitl_options: SitlChoice, tmp_path: Path) -> None:
    drop = near_drop_point(SITE, "erottaja", "drone", rank=4)
    async with running_mosquitto(tmp_path / "broker") as mosquitto, \
            site_sim(sitl_options, SITE, ["quad-1"]) as sim:
        settings = settings_for(tmp_path, sim, site_id="helsinki")  # the example ACL's site
        settings = settings.model_copy(update={"broker": mosquitto.settings("service", client_id="fleetctl-loss")})
        clock = ScaledClock(sim.speed, settings.sim_epoch)
        login = {"port": mosquitto.port, "username": "producer", "password": PASSWORDS["producer"]}
        async with running_service(settings) as service:
            async with producer("helsinki", clock, **login) as p:
                await p.publish(p.order("L-1", drop, handoff="drone_release"))
                await p.wait(lambda q: q.status.get("L-1", {}).get("state") == "in_transit", 60.0, "take-off")
            await mosquitto.save()
            await mosquitto.kill()
            # Meanwhile the drone delivers; the service stores every step.
            while (await service.store.get_order("L-1")).state != "delivered":
                await clock_sleep(sim.speed, 5.0)
            assert not service.bus.connected
            published_before = service.publisher.cursor
            await mosquitto.start()
            await service.bus.wait_connected(30.0)
            async with producer("helsinki", clock, **login) as p:  # retained: the current state
                await p.wait(lambda q: q.status.get("L-1", {}).get("state") in ("delivered",), 30.0,
                             "the status of what happened during the outage")
                assert p.status["L-1"]["proof"]["within_radius"] is True
            # the cursor moves once the broker confirmed the whole batch, just after the status arrived
            async with asyncio.timeout(10):
                while service.publisher.cursor <= published_before:  # a plain counter: no event to await
                    await clock_sleep(1.0, 0.05)
            assert service.bus.stats.reconnects >= 1


async def clock_sleep(speed: float, clock_s: float) -> None:
    await asyncio.sleep(clock_s / speed)
