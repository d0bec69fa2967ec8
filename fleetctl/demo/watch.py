"""What the demo sees of the run.

`Shop` is a plain MQTT client, as a shop's system would be: it publishes the orders on
fleet/<site>/orders/new and reads back what the service publishes (every order's status, the event
stream, the vehicles' states, rejections of unreadable messages). `Batteries` samples the vehicles'
charge once per simulated second from the running service, for the energy drawn; their positions are
sampled by `fleetctl.tracks.TrackRecorder` (the vehicle state topic is coalesced to 1 Hz of wall
time: too coarse for tracks and separations at 20x).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import aiomqtt
from pydantic import ValidationError

from fleetctl.bus import BrokerSettings, EventMessage, OrderStatus, RejectedMessage, VehicleStateMessage
from fleetctl.clock import Clock
from fleetctl.demo.orders import PlannedOrder
from fleetctl.errors import BusUnavailable
from fleetctl.orders.lifecycle import FINAL, OrderState
from fleetctl.tracks import TrackRecorder

#: Order states that end a demo order's story (returned: a failed delivery whose parcel came back).
TERMINAL = frozenset(s.value for s in FINAL)
INCIDENTS_KEPT = 200


@dataclass
class OrderView:
    """One order the shop sent, as the broker told the shop about it."""

    planned: PlannedOrder
    sent_at: datetime
    window_latest: datetime
    state: str | None = None  # the latest status
    reason: str | None = None
    detail: str = ""
    vehicle_id: str | None = None
    kinds: list[str] = field(default_factory=list)
    updated_at: datetime | None = None
    times: dict[str, datetime] = field(default_factory=dict)  # state -> first event time (simulated)
    failed_reason: str | None = None  # why it failed, if it ever did

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @property
    def delivered_at(self) -> datetime | None:
        if "delivered" in self.times:
            return self.times["delivered"]
        return self.updated_at if self.state == "delivered" else None

    @property
    def accepted_at(self) -> datetime | None:
        return self.times.get("accepted")

    @property
    def late_s(self) -> float | None:
        """How long after its window closed it was delivered (<= 0: on time); None if not delivered."""
        at = self.delivered_at
        return None if at is None else (at - self.window_latest).total_seconds()


@dataclass
class VehicleView:
    """One vehicle, from its state topic and the sortie events."""

    vehicle_id: str
    kind: str
    mode: str = "-"
    armed: bool = False
    battery_percent: float | None = None
    link_alive: bool = False
    sortie_id: str | None = None
    phase: str | None = None  # the phase of its current (or last) sortie
    sorties: set[str] = field(default_factory=set)

    @property
    def activity(self) -> str:
        """idle, charging, on sortie (with its phase), or link lost."""
        if not self.link_alive and self.mode != "-":
            return "link lost"
        if self.phase is not None and self.phase not in ("done", "failed"):
            return f"on sortie ({self.phase})"
        if self.sortie_id is not None or self.armed:
            return "on sortie"
        if self.battery_percent is not None and self.battery_percent < 99.0:
            return "charging"
        return "idle" if self.mode != "-" else "not heard"


@dataclass(frozen=True)
class Incident:
    at: datetime
    text: str


class Shop:
    """The order producer and status reader (see the module docstring). Use `connect`; with no
    client (`fleetctl.demo.rebuild`) it is what a finished run's store and events say, sending nothing."""

    def __init__(self, client: aiomqtt.Client | None, site_id: str, clock: Clock, vehicles: Mapping[str, str]) -> None:
        self._client = client
        self.site_id = site_id
        self._clock = clock
        self.prefix = f"fleet/{site_id}"
        self.orders: dict[str, OrderView] = {}
        self.vehicles = {vid: VehicleView(vid, kind) for vid, kind in vehicles.items()}
        self.incidents: deque[Incident] = deque(maxlen=INCIDENTS_KEPT)  # the last ones
        self.incident_count = 0
        self.zone_events: list[EventMessage] = []  # zones added and lifted during the run (for the map)
        self.rejected_messages: list[RejectedMessage] = []
        self.events_seen = 0
        self.last_seq = 0
        self.gaps = 0  # events missing from the stream (seq jumped)
        self.bad_messages = 0  # messages that did not parse as their topic's payload
        self._changed = asyncio.Event()
        self.listener: asyncio.Task[None] | None = None  # reads what the broker sends (while connected)

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: BrokerSettings, site_id: str, clock: Clock,
                      vehicles: Mapping[str, str]) -> AsyncIterator[Shop]:
        tls = await asyncio.to_thread(_tls_context, settings) if settings.uses_tls else None
        password = settings.password.get_secret_value() if settings.password else None
        async with contextlib.AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(aiomqtt.Client(
                    settings.host, settings.port, identifier=f"demo-shop-{uuid.uuid4().hex[:8]}",
                    username=settings.username, password=password, tls_context=tls, max_inflight_messages=20))
            except aiomqtt.MqttError as e:
                raise BusUnavailable(f"the shop cannot reach the broker at {settings.url}: {e}") from e
            shop = cls(client, site_id, clock, vehicles)
            for topic in ("orders/+/status", "orders/rejected", "events", "vehicles/+/state"):
                await client.subscribe(f"{shop.prefix}/{topic}", qos=1)
            shop.listener = asyncio.create_task(shop._listen(), name="demo-shop-listener")
            try:
                yield shop
            finally:
                shop.listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await shop.listener

    # ---- the shop's side ----

    async def send(self, order: PlannedOrder) -> OrderView:
        """Publish one order (QoS 1: returns once the broker has it); its window opens now."""
        if self._client is None:
            raise BusUnavailable("an offline view of a run sends no orders")
        now = self._clock.now()
        body = order.payload(self.site_id, now)
        view = OrderView(order, now, datetime.fromisoformat(body["window"]["latest"]))
        self.orders[order.order_id] = view
        await self._client.publish(f"{self.prefix}/orders/new", json.dumps(body), qos=1)
        return view

    async def send_pin(self, order_id: str, pin: str) -> None:
        """The recipient enters `pin` for `order_id` (QoS 1, on the order's hand-off topic)."""
        if self._client is None:
            raise BusUnavailable("an offline view of a run sends no PINs")
        await self._client.publish(f"{self.prefix}/orders/{order_id}/handoff", json.dumps({"pin": pin}), qos=1)

    def all_terminal(self) -> bool:
        return all(o.terminal for o in self.orders.values())

    async def changed(self, timeout_s: float) -> None:
        """Until something new arrives, or `timeout_s` (wall seconds)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._changed.wait()

    async def clear_retained(self) -> None:
        """Empty the retained topics of this run: the order statuses, the vehicle states and the
        zones in force (a shared broker keeps them otherwise)."""
        if self._client is None:
            return
        topics = [f"{self.prefix}/orders/{oid}/status" for oid in self.orders]
        topics += [f"{self.prefix}/vehicles/{vid}/state" for vid in self.vehicles]
        topics.append(f"{self.prefix}/zones")
        for topic in topics:
            await self._client.publish(topic, b"", qos=1, retain=True)

    # ---- what comes back ----

    def replay(self, event: EventMessage) -> None:
        """Take one event as if the broker had just sent it (a run rebuilt from its store)."""
        self._event(event)

    async def _listen(self) -> None:
        if self._client is None:
            return
        async for message in self._client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray) or not payload:
                continue  # a cleared retained message
            try:
                self._take(str(message.topic), bytes(payload))
            except (ValidationError, ValueError):
                self.bad_messages += 1
            self._changed.set()

    def _take(self, topic: str, payload: bytes) -> None:
        levels = topic.split("/")
        rest = levels[2:]
        if rest == ["events"]:
            self._event(EventMessage.model_validate_json(payload))
        elif len(rest) == 3 and rest[0] == "orders" and rest[2] == "status":
            self._status(OrderStatus.model_validate_json(payload))
        elif rest == ["orders", "rejected"]:
            rejected = RejectedMessage.model_validate_json(payload)
            self.rejected_messages.append(rejected)
            self._incident(rejected.at, f"unreadable message refused: {rejected.reason}")
        elif len(rest) == 3 and rest[0] == "vehicles" and rest[2] == "state":
            self._vehicle_state(VehicleStateMessage.model_validate_json(payload))

    def _status(self, status: OrderStatus) -> None:
        view = self.orders.get(status.order_id)
        if view is None:
            return  # not one of ours (a shared broker)
        if view.updated_at is not None and status.updated_at < view.updated_at:
            return  # an older status than the one we have (a redelivery)
        view.state = status.state.value
        view.reason = status.reason
        view.detail = status.detail
        view.vehicle_id = status.vehicle_id or view.vehicle_id
        view.kinds = list(status.kinds)
        view.updated_at = status.updated_at

    def _event(self, event: EventMessage) -> None:
        self.events_seen += 1
        if self.last_seq and event.seq > self.last_seq + 1:
            self.gaps += event.seq - self.last_seq - 1
        self.last_seq = max(self.last_seq, event.seq)
        kind = event.kind
        if event.entity == "order":
            self._order_event(event)
        elif event.entity == "sortie":
            vehicle = self.vehicles.get(str(event.data.get("vehicle_id")))
            phase = kind.removeprefix("sortie.")
            if vehicle is not None:
                vehicle.sorties.add(event.entity_id)
                vehicle.phase = phase
            if phase == "failed":
                self._incident(event.at, f"sortie of {event.data.get('order_id')} on "
                               f"{event.data.get('vehicle_id')} failed: {event.data.get('detail') or ''}")
        elif event.entity == "zone" and kind in ("zone.added", "zone.removed"):
            self.zone_events.append(event)
            reason = event.data.get("reason")
            self._incident(event.at, f"no-fly zone {event.entity_id} {kind.removeprefix('zone.')}"
                           + (f" ({reason})" if reason and kind == "zone.added" else ""))
        elif event.entity == "vehicle" and kind in ("vehicle.link_lost", "vehicle.link_restored"):
            self._incident(event.at, f"{event.entity_id}: {kind.removeprefix('vehicle.').replace('_', ' ')}")

    def _order_event(self, event: EventMessage) -> None:
        view = self.orders.get(event.entity_id)
        if view is None:
            return
        step = event.kind.removeprefix("order.")
        if step not in _STATES:
            return  # eta, pinned, id_conflict: no step
        view.times.setdefault(step, event.at)
        reason = event.data.get("reason")
        if step == "rejected":
            self._incident(event.at, f"{view.planned.order_id} refused: {reason} ({event.data.get('detail') or ''})")
        elif step == "failed":
            view.failed_reason = str(reason)
            self._incident(event.at, f"{view.planned.order_id} failed: {reason}")
        elif step == "accepted" and reason:
            self._incident(event.at, f"{view.planned.order_id} back to dispatch: {reason}")
        elif step == "cancelled":
            self._incident(event.at, f"{view.planned.order_id} cancelled")

    def _vehicle_state(self, state: VehicleStateMessage) -> None:
        view = self.vehicles.get(state.vehicle_id)
        if view is None:
            return
        view.mode, view.armed, view.link_alive = state.mode, state.armed, state.link_alive
        view.battery_percent, view.sortie_id = state.battery_percent, state.sortie_id

    def _incident(self, at: datetime, text: str) -> None:
        self.incidents.append(Incident(at, text))
        self.incident_count += 1


_STATES = frozenset(s.value for s in OrderState)


def _tls_context(settings: BrokerSettings) -> ssl.SSLContext:
    return settings.tls.context() if settings.tls is not None else ssl.create_default_context()


# ---- batteries --------------------------------------------------------------------------------


@dataclass
class Battery:
    vehicle_id: str
    pack_wh: float
    percent: float | None = None
    used_wh: float = 0.0  # the falls of the reported charge
    charged_wh: float = 0.0  # its rises (on a charger)


class Batteries:
    """Each vehicle's reported charge once per simulated second (at most SAMPLE_HZ_MAX a wall second),
    from `read` (vehicle id -> charge in %, None when not known): energy drawn and charged. Positions
    are `fleetctl.tracks.TrackRecorder`'s."""

    SAMPLE_HZ_MAX = 20.0

    def __init__(self, packs: Mapping[str, float], clock: Clock, read: Callable[[str], float | None]) -> None:
        self._clock = clock
        self._read = read
        self.batteries = {vid: Battery(vid, wh) for vid, wh in packs.items()}

    async def run(self) -> None:
        period_s = max(self._clock.wall_s(1.0), 1.0 / self.SAMPLE_HZ_MAX)
        while True:
            self.sample()
            await asyncio.sleep(period_s)

    def sample(self) -> None:
        for vid, battery in self.batteries.items():
            percent = self._read(vid)
            if percent is None:
                continue
            if battery.percent is not None:
                change_wh = (percent - battery.percent) * battery.pack_wh / 100.0
                if change_wh < 0:
                    battery.used_wh -= change_wh
                else:
                    battery.charged_wh += change_wh
            battery.percent = percent


@dataclass
class Recording:
    """What is sampled from the running fleet: tracks (fleetctl.tracks) and batteries."""

    tracks: TrackRecorder
    batteries: Batteries
    start: datetime  # simulated time the day started

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self.tracks.run(), name="demo-tracks")
            group.create_task(self.batteries.run(), name="demo-batteries")

    def sample(self) -> None:
        self.tracks.sample()
        self.batteries.sample()
