"""The service under test: a site's fleet on the built-in simulator (or real PX4 SITL with
`--sitl px4`), the real service on it (SQLite or PostgreSQL, the Mosquitto on 127.0.0.1:1883), and a
plain MQTT client playing the order producer and reading what the service publishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from vehicles_harness import PX4_MAX_SPEED_X_VEHICLES, SitlChoice

from fleetctl.bus import BrokerSettings
from fleetctl.clock import ScaledClock
from fleetctl.config import ServiceSettings
from fleetctl.fleet_view import fleet_members
from fleetctl.service import Running, Service
from fleetctl.tracks import TrackRecorder, min_drone_separation, zone_incursions
from planner.site import Site, load_site
from sitl.ports import free_udp_block
from sitl.site_fleet import fleet_specs

SITE_DIR = Path(__file__).resolve().parents[2] / "sitl" / "worlds" / "helsinki"
BROKER = "mqtt://127.0.0.1:1883"
BUILTIN_SPEED = 20.0


def helsinki() -> Site:
    return load_site(SITE_DIR)


def near_drop_point(site: Site, depot: str, kind: str, *, rank: int = 0, lo_m: float = 100.0,
                    hi_m: float = 400.0) -> str:
    """The `rank`-th nearest drop point to `depot` beyond `lo_m` that admits `kind` ("drone"/"robot")."""
    xy = site.depots[depot].xy_m
    near = sorted((math.dist(xy, d.xy_m), n) for n, d in site.drop_points.items()
                  if (d.drone_ok if kind == "drone" else d.robot_ok) and lo_m <= math.dist(xy, d.xy_m) <= hi_m)
    return near[rank][1]


@dataclass
class SimBackend:
    sim: Any  # SimFleet or Px4Fleet
    gcs_port: int
    speed: float
    backend: str


@contextlib.asynccontextmanager
async def site_sim(options: SitlChoice, site: Site, vehicle_ids: Sequence[str], *,
                   speed: float = BUILTIN_SPEED) -> AsyncIterator[SimBackend]:
    """The named vehicles of the site's fleet, on their depots, as instances numbered like the fleet
    list (system id = place + 1), as fleetctl expects."""
    specs = fleet_specs(site, vehicle_ids)
    if options.backend == "px4":
        reason = options.px4_skip_reason()
        if reason:
            pytest.skip(reason)
        from sitl.px4 import Px4Fleet

        assert options.px4_dir is not None
        px4_speed = max(1.0, min(speed, PX4_MAX_SPEED_X_VEHICLES / len(specs)))
        async with Px4Fleet(options.px4_dir, specs, speed_factor=px4_speed) as sim:
            yield SimBackend(sim, 14550, px4_speed, "px4")  # PX4's GCS link always goes to 14550
        return
    from sitl import SimFleet, SimPorts

    n = max(s.instance or 0 for s in specs) + 1
    base = free_udp_block(1 + 3 * n)
    ports = SimPorts(target_host="127.0.0.1", gcs_target_port=base, api_target_base=base + 1,
                     gcs_listen_base=base + 1 + n, api_listen_base=base + 1 + 2 * n, bind_host="127.0.0.1")
    # PX4's default NAV_DLL_ACT is 0: a vehicle flies its mission on while no ground station talks
    async with SimFleet(specs, ports=ports, speed_factor=speed, stream_profile="gcs",
                        datalink_timeout_s=None) as sim:
        yield SimBackend(sim, base, speed, "builtin")


def sim_vehicle(sim: SimBackend, site: Site, vehicle_id: str) -> Any:
    """The built-in simulator's vehicle `vehicle_id` (its `faults` are the fault switches)."""
    assert sim.backend == "builtin", "fault injection needs the built-in simulator"
    return sim.sim.vehicle(fleet_members(site)[vehicle_id].sysid)


def skip_fault_injection_on_px4(options: SitlChoice, what: str) -> None:
    if options.backend == "px4":
        pytest.skip(f"{what}: a fault only the built-in simulator can inject (PX4 SITL has no switch for it)")


def settings_for(tmp_path: Path, sim: SimBackend, *, store: str | None = None, site_id: str | None = None,
                 epoch: datetime | None = None, **extra: Any) -> ServiceSettings:
    site_id = site_id or f"t{uuid.uuid4().hex[:10]}"  # topics and the persistent session are the test's own
    return ServiceSettings(
        site=SITE_DIR, site_id=site_id, store=store or f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}",
        broker=BrokerSettings(url=BROKER, client_id=f"fleetctl-{site_id}"),
        mavlink=f"udpin://127.0.0.1:{sim.gcs_port}", speed_factor=sim.speed,
        sim_epoch=epoch or datetime.now(UTC), dispatch_tick_s=20.0, **extra)


@contextlib.asynccontextmanager
async def running_service(settings: ServiceSettings, *, ready_timeout_s: float = 60.0) -> AsyncIterator[Running]:
    service = Service(settings)
    task = asyncio.create_task(service.run(), name="service-under-test")
    try:
        async with asyncio.timeout(ready_timeout_s):
            done, _ = await asyncio.wait({task, asyncio.create_task(service.ready.wait())},
                                         return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what stopped it
        assert service.running is not None
        yield service.running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Producer:
    """An order producer and watcher on the broker: publishes orders, records everything the service
    publishes under the site's topics."""

    site_id: str
    clock: ScaledClock
    client: aiomqtt.Client
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # Recipients: a PIN order's PIN is sent when its robot is at the door, unless the recipient is absent.
    pins: dict[str, str] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    pins_sent: list[str] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def order(self, order_id: str, dropoff: str | dict[str, float], **over: Any) -> dict[str, Any]:
        now = self.clock.now()
        body: dict[str, Any] = {"order_id": order_id, "site": self.site_id, "dropoff": dropoff, "weight_kg": 1.0,
                                "window": {"earliest": now.isoformat(),
                                           "latest": (now + timedelta(hours=2)).isoformat()}}
        body.update(over)
        if body.get("handoff") == "pin":
            body.setdefault("handoff_pin", f"{4000 + len(self.pins):04d}")
            self.pins[order_id] = body["handoff_pin"]
        return body

    async def send_pin(self, order_id: str, pin: str) -> None:
        self.pins_sent.append(order_id)
        await self.client.publish(f"fleet/{self.site_id}/orders/{order_id}/handoff", json.dumps({"pin": pin}), qos=1)

    async def publish(self, payload: dict[str, Any] | bytes | str) -> None:
        data = payload if isinstance(payload, bytes | str) else json.dumps(payload)
        await self.client.publish(f"fleet/{self.site_id}/orders/new", data, qos=1)

    async def publish_many(self, payloads: Sequence[bytes], *, window: int = 20) -> None:
        """Publish with up to `window` QoS 1 messages awaiting their PUBACK at once (paho's in-flight
        limit), in order within each window."""
        topic = f"fleet/{self.site_id}/orders/new"
        for i in range(0, len(payloads), window):
            await asyncio.gather(*(self.client.publish(topic, raw, qos=1) for raw in payloads[i:i + window]))

    async def wait(self, predicate: Any, timeout_s: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate(self):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; statuses: "
                                 f"{ {k: v['state'] for k, v in self.status.items()} }") from None

    async def _listen(self) -> None:
        async for message in self.client.messages:
            topic, payload = str(message.topic), bytes(message.payload)  # type: ignore[arg-type]
            self.seen.append((topic, payload))
            parts = topic.split("/")
            if len(parts) == 5 and parts[2] == "orders" and parts[4] == "status":
                body = json.loads(payload)
                self.status[parts[3]] = body
                self.history.setdefault(parts[3], []).append(body["state"])
                order_id = parts[3]
                if body["state"] == "delivering" and order_id in self.pins and order_id not in self.absent:
                    task = asyncio.create_task(self.send_pin(order_id, self.pins[order_id]), name="recipient")
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            elif topic.endswith("/orders/rejected"):
                self.rejected.append(json.loads(payload))
            self._changed.set()


@contextlib.asynccontextmanager
async def producer(site_id: str, clock: ScaledClock, *, port: int = 1883, username: str | None = None,
                   password: str | None = None) -> AsyncIterator[Producer]:
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"producer-{uuid.uuid4().hex[:8]}",
                              username=username, password=password) as client:
        await client.subscribe(f"fleet/{site_id}/#", qos=1)
        p = Producer(site_id, clock, client)
        listener = asyncio.create_task(p._listen(), name="producer-listener")
        try:
            yield p
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


#: Drones closer than this horizontally while within SEPARATION_VERTICAL_M fail a test's track check.
#: Well under planner.deconflict's planned 30 m: the plan is conservative, the check is what is unsafe.
SEPARATION_MIN_M = 10.0
SEPARATION_VERTICAL_M = 10.0


@contextlib.asynccontextmanager
async def tracked(service: Running, clock: ScaledClock) -> AsyncIterator[TrackRecorder]:
    """Record every vehicle's track while the block runs, then check it: no drone inside an active
    no-fly zone of the site, no two airborne drones closer than SEPARATION_MIN_M (the least
    separation seen is printed, for the closing note)."""
    names = {m.sysid: m.vehicle_id for m in fleet_members(service.site).values()}
    recorder = TrackRecorder(service.fleet, service.site.frame, clock, names=names)
    task = asyncio.create_task(recorder.run(), name="track-recorder")
    try:
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tracks = list(recorder.tracks.values())
    assert zone_incursions(tracks, service.site.zones, tolerance_m=1.0) == []
    closest = min_drone_separation(tracks, vertical_m=SEPARATION_VERTICAL_M)
    if closest is not None:
        print(f"track check: least drone separation {closest.horizontal_m:.1f} m horizontal, "
              f"{closest.vertical_m:.1f} m vertical ({closest.pair[0]}, {closest.pair[1]})")
        assert closest.horizontal_m >= SEPARATION_MIN_M, closest
