"""One MAVSDK instance behind one UDP port (our socket, see _transport) serving the whole fleet.

Every PX4 instance (and every built-in simulated vehicle) sends its GCS link to the same port; MAVSDK
tells them apart by system id. A vehicle appears when its system id is first heard; MAV_TYPE says
drone or rover. Our side is configured as a ground station, so MAVSDK's heartbeat is MAV_TYPE_GCS:
PX4 sends STATUSTEXT (the reasons for refusals) only to a GCS-type peer.

    async with MavsdkFleet("udpin://0.0.0.0:14550", fleet_config={1: "drone-1"}) as fleet:
        drone = await fleet.vehicle("drone-1", timeout_s=30)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from types import TracebackType
from typing import Any, Self

from mavsdk import ComponentType, Configuration, LogLevel, Mavsdk, log_subscribe
from mavsdk import logging as mavsdk_logging
from mavsdk.exceptions import ConnectionError as MavsdkConnectionError
from mavsdk.vehicle import Vehicle as MavsdkVehicleType

from vehicles.base import EventKind, VehicleEvent, VehicleKind
from vehicles.errors import ConnectionFailed, UnknownVehicle
from vehicles.mavsdk_backend._bridge import Inbox
from vehicles.mavsdk_backend._commands import DirectCommands
from vehicles.mavsdk_backend._params import frame
from vehicles.mavsdk_backend._telemetry import Tracker
from vehicles.mavsdk_backend._transport import RawUdpLink, udp_listen_address
from vehicles.mavsdk_backend.vehicle import MavsdkVehicle
from vehicles.streams import Fanout, Latest, Subscription

log = logging.getLogger(__name__)
mavsdk_log = logging.getLogger("vehicles.mavsdk")

DEFAULT_URL = "udpin://0.0.0.0:14550"
RECEIVE_BUFFER_BYTES = 4 << 20  # absorbs a fleet's bursts (the kernel caps it at net.core.rmem_max)
_MAX_PENDING_ORDERED = 16384  # status texts, mission progress, ACKs not yet applied, fleet-wide
_MSG_HEARTBEAT = 0
_HEARTBEAT_CRC_EXTRA = 50
_DISCOVERY_COALESCE_S = 0.05
# HEARTBEAT: custom_mode, type GCS (6), autopilot INVALID (8), base_mode, ACTIVE (4), mavlink v3
_GCS_HEARTBEAT = struct.pack("<IBBBBB", 0, 6, 8, 0, 4, 3)  # a fleet appears in a burst: one scan of MAVSDK's systems per burst
_LOG_LEVELS = {LogLevel.DEBUG: logging.DEBUG, LogLevel.INFO: logging.INFO,
               LogLevel.WARN: logging.WARNING, LogLevel.ERROR: logging.ERROR}


def _route_mavsdk_log(level: Any, message: str, _file: str | None, _line: int) -> bool:
    # MAVSDK prints to stdout by default; send it to logging instead (True = handled).
    mavsdk_log.log(_LOG_LEVELS.get(level, logging.INFO), "%s", message)
    return True


def _route_mavsdk_logs_once() -> None:
    # Workaround for mavsdk 4.1.0: log_subscribe() drops its previous ctypes trampoline before it
    # installs the new one, and the MAVSDK threads of every live instance log through it. So a
    # second fleet entering while another one's MAVSDK logs ("Timeout for not-existing command"
    # under load) could jump into freed memory. Subscribe once per process; never replace it.
    if getattr(mavsdk_logging, "_log_callback_ref", None) is None:
        log_subscribe(_route_mavsdk_log)


class MavsdkFleet:
    """The fleet as seen on one MAVLink endpoint.

    `fleet_config` maps system ids to vehicle ids (others get "sys<id>"). `speed_factor` is how much
    faster than real time the vehicles run; by default (None) each vehicle's is measured from the
    `time_boot_ms` it streams (see `_clock`), so a sped-up simulation needs no setting. Every timeout
    (given in vehicle seconds) is divided by it, never below `min_wall_timeout_s`. The link counts as lost after `link_timeout_s` (vehicle
    seconds, same scaling) without a HEARTBEAT. Position, velocity and heading are sampled every
    `sample_period_s` (vehicle seconds; at most 20 times per wall second), battery, landed state,
    health and home once per vehicle second. A UDP server URL is served by our own socket (see
    `_transport`) with a kernel receive buffer of `receive_buffer_bytes` (0: the system default).
    """

    def __init__(self, url: str = DEFAULT_URL, *, fleet_config: Mapping[int, str] | None = None,
                 speed_factor: float | None = None, link_timeout_s: float = 3.0,
                 min_wall_timeout_s: float = 2.0, sample_period_s: float = 0.2,
                 receive_buffer_bytes: int = RECEIVE_BUFFER_BYTES) -> None:
        if speed_factor is not None and speed_factor <= 0:
            raise ValueError(f"speed_factor must be positive, got {speed_factor}")
        self.url = url
        self._fixed_speed_factor = speed_factor
        self._config = dict(fleet_config or {})
        self._link_timeout_s = link_timeout_s
        self._min_wall_s = min_wall_timeout_s
        self._sample_period_s = sample_period_s
        self._receive_buffer_bytes = receive_buffer_bytes
        self._vehicles: dict[int, MavsdkVehicle] = {}
        self._systems_seen = 0  # MAVSDK's system count when every system then known was decided
        self._inbox: Inbox  # made on entry: it needs the running loop
        self._dirty: set[Tracker] = set()  # trackers changed since their last publish
        self._native_refs: list[object] = []  # see _shutdown
        self._link: RawUdpLink | None = None
        self._commands = DirectCommands()
        self._roster: Latest[int] = Latest(0)  # bumped on every discovery
        self._discoveries: Fanout[MavsdkVehicle] = Fanout()
        self._events: Fanout[VehicleEvent] = Fanout(1024)
        self._mavsdk: Any = None
        self._tasks: asyncio.TaskGroup | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._stack = contextlib.AsyncExitStack()

    # ---- lifecycle ----

    async def __aenter__(self) -> Self:
        _route_mavsdk_logs_once()
        self._inbox = Inbox(asyncio.get_running_loop(), self._publish_dirty, _MAX_PENDING_ORDERED)
        config = Configuration.create_with_component_type(ComponentType.GROUND_STATION)
        # The plain (callback) API, not mavsdk.asyncio: that wrapper runs every call in the default
        # executor and unsubscribes its generators at some later garbage collection.
        self._mavsdk = Mavsdk(config)
        try:
            await self._connect()
        except (MavsdkConnectionError, OSError) as e:
            await asyncio.to_thread(self._mavsdk.destroy)
            raise ConnectionFailed(self.url, str(e)) from e
        await self._stack.__aenter__()
        self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._stack.push_async_callback(self._shutdown)
        self.spawn(self._discover(), "fleet-discovery")
        self.spawn(self._watch_links(), "fleet-link-watch")
        self.spawn(self._sample_telemetry(), "fleet-telemetry")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)

    async def _connect(self) -> None:
        """A UDP server URL gets our own socket in front of MAVSDK (see _transport); any other URL
        is MAVSDK's own connection. Raises MAVSDK's ConnectionError or OSError."""
        address = udp_listen_address(self.url)
        if address is None:
            await asyncio.to_thread(self._mavsdk.add_any_connection_with_handle, self.url)
            return
        self._mavsdk.add_any_connection_with_handle("raw://")
        link = RawUdpLink(self._mavsdk, self._receive_buffer_bytes)
        await link.open(*address)
        self._link = link

    async def _shutdown(self) -> None:
        # Runs before the TaskGroup exits: stop our loops, then MAVSDK (which joins its threads).
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._inbox.close()
        if self._link is not None:
            self._link.close()
        # Workaround for mavsdk 4.1.0's Python wrapper: Mavsdk.destroy() destroys every plugin first,
        # and a plugin's destroy() drops the ctypes trampolines (CFUNCTYPE) of its `*_async` calls and
        # subscriptions, while MAVSDK's callback thread runs on until mavsdk_destroy() at the very
        # end. A callback still queued there (the late ACK or the timeout of a command in flight:
        # "Timeout for not-existing command: 512") then jumps into freed memory: SIGSEGV, or SIGILL
        # once the memory is reused; under load there are many such commands. So hold every
        # trampoline until destroy() has returned (it joins MAVSDK's threads), and beyond.
        self._native_refs = [self._commands.trampoline]
        self._native_refs += [ref for vehicle in self._vehicles.values() for ref in vehicle.native_callbacks()]
        await asyncio.to_thread(self._mavsdk.destroy)

    def _publish_dirty(self) -> None:
        dirty = self._dirty
        while dirty:
            dirty.pop().publish()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background job of the fleet under its TaskGroup."""
        if self._tasks is None:
            coro.close()
            raise RuntimeError("fleet not entered (use `async with MavsdkFleet(...)`)")
        task = self._tasks.create_task(coro, name=name)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    @property
    def speed_factor(self) -> float:
        """Vehicle seconds per wall second: the one given, else the fastest vehicle's measured rate
        (1.0 until one is measured)."""
        if self._fixed_speed_factor is not None:
            return self._fixed_speed_factor
        measured = [c.factor for c in self._link.clocks.values() if c.factor] if self._link is not None else []
        return max(measured, default=1.0)

    def vehicle_speed_factor(self, sysid: int) -> float:
        """One vehicle's rate (the one given, else measured; the fleet's until it is measured)."""
        if self._fixed_speed_factor is None and self._link is not None:
            clock = self._link.clocks.get(sysid)
            if clock is not None and clock.factor:
                return clock.factor
        return self.speed_factor

    def wall_s(self, vehicle_s: float, *, floor_s: float | None = None, sysid: int | None = None) -> float:
        """A duration in vehicle time (of `sysid`, or of the fastest vehicle) -> wall seconds to wait."""
        factor = self.speed_factor if sysid is None else self.vehicle_speed_factor(sysid)
        return max(vehicle_s / factor, self._min_wall_s if floor_s is None else floor_s)

    # ---- the fleet ----

    @property
    def vehicles(self) -> Mapping[int, MavsdkVehicle]:
        """Vehicles heard so far, by system id."""
        return dict(self._vehicles)

    def _find(self, key: int | str) -> MavsdkVehicle | None:
        if isinstance(key, int):
            return self._vehicles.get(key)
        return next((v for v in self._vehicles.values() if v.vehicle_id == key), None)

    async def vehicle(self, key: int | str, timeout_s: float = 30.0) -> MavsdkVehicle:
        """The vehicle with this system id or vehicle id, waiting for it to be heard."""
        try:
            async with asyncio.timeout(self.wall_s(timeout_s)), contextlib.aclosing(self._roster.changes()) as roster:
                async for _ in roster:
                    found = self._find(key)
                    if found is not None:
                        return found
        except TimeoutError:
            known: list[str | int] = [v.vehicle_id for v in self._vehicles.values()]
            raise UnknownVehicle(key, known) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def discoveries(self) -> AsyncIterator[MavsdkVehicle]:
        """Every vehicle: those already heard, then each new one as it appears."""
        new = self._discoveries.subscribe()
        for vehicle in list(self._vehicles.values()):
            yield vehicle
        async for vehicle in new:
            yield vehicle

    def link_counters(self) -> tuple[int, int] | None:
        """(datagrams received, datagrams sent) on our UDP socket; None when MAVSDK owns the link."""
        return None if self._link is None else (self._link.received, self._link.sent)

    def events(self) -> Subscription[VehicleEvent]:
        """Events of all vehicles (bounded; a slow reader loses the oldest)."""
        return self._events.subscribe()

    # ---- background jobs ----

    async def _discover(self) -> None:
        loop = asyncio.get_running_loop()
        heard = asyncio.Event()

        def on_new_system(_user_data: Any) -> None:  # on MAVSDK's callback thread
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is discovering
                loop.call_soon_threadsafe(heard.set)

        # Never unsubscribed by us: Mavsdk.destroy() does, keeping the trampoline alive until
        # MAVSDK's threads are gone (an unsubscribe here could race a queued callback).
        self._mavsdk.subscribe_on_new_system(on_new_system)
        while True:
            heard.clear()
            undecided = self._adopt_new_systems()
            # A system can be announced before its autopilot's HEARTBEAT told MAVSDK what it
            # is; look again shortly instead of waiting for a tick that will not come.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.wall_s(0.5, floor_s=0.1) if undecided else None):
                    await heard.wait()
            await asyncio.sleep(_DISCOVERY_COALESCE_S)

    def _adopt_new_systems(self) -> bool:
        """Make vehicles of new autopilot systems; True if some system is not identified yet."""
        count = self._mavsdk.system_count()
        if count == self._systems_seen:
            return False
        undecided = False
        # Each System is a fresh handle on MAVSDK's system; those we do not keep are released.
        for system in self._mavsdk.get_systems():
            sysid = int(system.get_system_id())
            if sysid in self._vehicles:
                continue
            mavsdk_type = system.vehicle_type()
            if not system.has_autopilot() or mavsdk_type == MavsdkVehicleType.UNKNOWN:
                undecided = True
                continue
            kind: VehicleKind = "rover" if mavsdk_type == MavsdkVehicleType.ROVER else "drone"
            vehicle_id = self._config.get(sysid, f"sys{sysid}")
            vehicle = MavsdkVehicle(self, system, vehicle_id, sysid, kind)
            self._vehicles[sysid] = vehicle
            log.info("discovered %s (sysid %d, %s)", vehicle_id, sysid, kind)
            self._discoveries.publish(vehicle)
            self._events.publish(VehicleEvent(vehicle_id, EventKind.DISCOVERED, kind))
            self._roster.set(len(self._vehicles))
        if not undecided:
            self._systems_seen = count
        return undecided

    def _answer_heartbeat(self, sysid: int) -> None:
        """Answer each HEARTBEAT of a vehicle with our GCS one, so ours come once per *vehicle*
        second whatever the speed-up, from the first heartbeat on.

        PX4's data-link-loss failsafe (COM_DL_LOSS_T, 10 s) runs in simulated time: at a speed factor
        above ~10, MAVSDK's 1 Hz wall heartbeat alone would send every simulated vehicle home. Paced by
        the vehicle itself, this needs no estimate of the speed-up (and so has no gap before one)."""
        if self._link is not None:
            self._link.send_frame(sysid, frame(self._link.next_seq(), _MSG_HEARTBEAT, _HEARTBEAT_CRC_EXTRA,
                                               _GCS_HEARTBEAT))

    async def _watch_links(self) -> None:
        while True:
            await asyncio.sleep(min(0.25, self.wall_s(self._link_timeout_s) / 4))
            now = time.monotonic()
            for sysid, vehicle in self._vehicles.items():
                vehicle._tracker.check_link(now, self.wall_s(self._link_timeout_s, sysid=sysid))

    async def _sample_telemetry(self) -> None:
        # A few samples per vehicle second, at most 20 per wall second (see _telemetry's docstring);
        # the slow fields once per vehicle second, each vehicle in its own round to spread the work.
        rounds = 0
        while True:
            period_s = self.wall_s(self._sample_period_s, floor_s=0.05)
            slow_every = max(1, round(self.wall_s(1.0, floor_s=period_s) / period_s))
            await asyncio.sleep(period_s)
            rounds += 1
            for sysid, vehicle in self._vehicles.items():
                vehicle._tracker.sample(slow=(rounds + sysid) % slow_every == 0)
            self._publish_dirty()

