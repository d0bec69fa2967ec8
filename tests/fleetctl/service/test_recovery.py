"""Crash recovery: `fleetctl serve` is killed with SIGKILL at random moments while orders stream in and
vehicles fly, and started again. Afterwards every order published was received exactly once, none
is lost, none delivered twice, and every one ends settled (a final state, no parcel left out).

8 kills in the default suite (the service starts at a different point of its work each time; 20 took
four minutes of a 14-minute suite); `--soak` runs the long version (100 kills)."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_harness import helsinki, near_drop_point, producer, settings_for, site_sim
from vehicles_harness import SitlChoice

from fleetctl.clock import ScaledClock
from fleetctl.config import ServiceSettings
from fleetctl.orders.lifecycle import OrderState
from fleetctl.store import Store

pytestmark = [pytest.mark.sitl]
SITE = helsinki()
VEHICLES = ["quad-1", "quad-2", "quad-3", "robot-1", "robot-2"]  # all at erottaja
START_TIMEOUT_S = 30.0


def write_config(settings: ServiceSettings, path: Path) -> Path:
    broker = settings.broker
    text = (f'site = "{settings.site}"\nsite_id = "{settings.site_id}"\nstore = "{settings.store}"\n'
            f'mavlink = "{settings.mavlink}"\nspeed_factor = {settings.speed_factor}\n'
            f'sim_epoch = "{settings.sim_epoch.isoformat() if settings.sim_epoch else ""}"\n'
            f'dispatch_tick_s = {settings.dispatch_tick_s}\n'
            f'[broker]\nurl = "{broker.url}"\nclient_id = "{broker.client_id}"\n')
    path.write_text(text)
    return path


async def start_service(config: Path, log_path: Path) -> asyncio.subprocess.Process:
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleetctl", "serve", "--config", str(config), "-v",
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


async def wait_started(p: object, count: int, proc: asyncio.subprocess.Process, log_path: Path) -> None:
    """Until the `count`-th service.started event is on the bus (each start logs one)."""
    def started(q: object) -> bool:
        seen = q.seen  # type: ignore[attr-defined]
        return sum(1 for t, m in seen if t.endswith("/events") and b'"service.started"' in m) >= count
    try:
        await p.wait(started, START_TIMEOUT_S, "the service to start")  # type: ignore[attr-defined]
    except AssertionError:
        log = await asyncio.to_thread(log_path.read_text)
        raise AssertionError(f"service did not start (exit {proc.returncode}):\n{log[-3000:]}") from None


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("kills", [pytest.param(8, id="8-kills"),
                                   pytest.param(100, id="100-kills", marks=pytest.mark.soak)])
async def test_sigkill_at_random_moments_loses_nothing(sitl_options: SitlChoice, tmp_path: Path, kills: int) -> None:
    rng = random.Random(8)
    drops = [(near_drop_point(SITE, "erottaja", "drone", rank=i), "drone_release") for i in range(3)] + \
            [(near_drop_point(SITE, "erottaja", "robot", rank=i), "pin") for i in range(2)]
    async with site_sim(sitl_options, SITE, VEHICLES) as sim:
        settings = settings_for(tmp_path, sim)
        config = write_config(settings, tmp_path / "fleet.toml")
        log_path = tmp_path / "service.log"
        clock = ScaledClock(sim.speed, settings.sim_epoch)
        published: list[str] = []
        async with producer(settings.site_id or "", clock) as p:
            proc = None
            try:
                for trial in range(kills):
                    proc = await start_service(config, log_path)
                    await wait_started(p, trial + 1, proc, log_path)
                    # real PX4 flies at a few x on 2 cores: fewer orders, or the fleet never catches up
                    for _ in range(rng.randint(1, 3) if sim.backend == "builtin" else rng.randint(0, 1)):
                        order_id = f"K-{len(published)}"
                        drop, handoff = rng.choice(drops)
                        await p.publish(p.order(order_id, drop, handoff=handoff))
                        published.append(order_id)
                        await asyncio.sleep(rng.uniform(0.0, 0.6))
                    await asyncio.sleep(rng.uniform(0.0, 2.0))
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                # the last start runs until every order is settled
                proc = await start_service(config, log_path)
                await wait_started(p, kills + 1, proc, log_path)
                final = {"delivered", "rejected", "failed", "returned", "cancelled"}
                # every order is a sortie of ~3 simulated minutes, five vehicles share them
                await p.wait(lambda q: all(q.status.get(o, {}).get("state") in final for o in published),
                             120.0 + 60.0 * len(published) / sim.speed, "every order settled")
            finally:
                if proc is not None and proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)  # a clean stop this time
                    try:
                        async with asyncio.timeout(15):
                            await proc.wait()
                    except TimeoutError:
                        proc.kill()
                        raise AssertionError("SIGTERM did not stop the service within 15 s") from None
                    assert proc.returncode == 0, f"exit {proc.returncode} after SIGTERM"
        async with Store.open(settings.store) as store:
            orders = {o.order_id: o for o in await store.list_orders(limit=100_000)}
            assert sorted(orders) == sorted(published), "every order published was received, and nothing else"
            for order_id in published:
                kinds = [e.kind for e in await store.order_events(order_id)]
                assert kinds.count("order.received") == 1, (order_id, kinds)
                assert kinds.count("order.delivered") <= 1, (order_id, kinds)
                record = orders[order_id]
                assert record.settled, (order_id, record.state, record.reason, kinds)
                assert record.reason != "fate_unknown", (order_id, kinds)
                assert p.status[order_id]["state"] == record.state  # the bus says what the store says
            delivered = sum(o.state == OrderState.DELIVERED for o in orders.values())
            assert delivered >= len(published) // 2, {o.order_id: (o.state, o.reason) for o in orders.values()}
        print(f"{kills} kills, {len(published)} orders: {delivered} delivered, "
              f"{json.dumps({s: sum(o.state == s for o in orders.values()) for s in final})}")
