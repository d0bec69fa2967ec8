"""SimFleet: N simulated vehicles on one asyncio loop, one scheduler tick for all of them.

Time: simulated time runs `speed_factor` times faster than the loop's clock. Every tick steps
the vectorised physics of the whole fleet, then each vehicle's logic, then its due streams. If
the host cannot keep up, a tick advances at most `MAX_LAG_TICKS` ticks' worth of sim time, so
the simulation slows down (as PX4's lockstep SIH does) instead of losing fidelity; `stats()`
reports the achieved factor. Mission-protocol retries of vehicles in a transfer are driven by a
second, faster timer so they keep PX4's 0.25 s (sim) cadence at any speed factor.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from sitl.errors import BadVehicleSpec, PortsUnavailable
from sitl.physics import Physics
from sitl.streams import StreamProfile
from sitl.telemetry import stream_messages
from sitl.vehicle import SimPorts, SimVehicle, VehicleSpec

MAX_LAG_TICKS = 3.0
PHYSICS_DT_S = 0.02  # 50 Hz sim
MAX_PHYSICS_STEPS_PER_TICK = 8
PROTOCOL_TICK_SIM_S = 0.05  # MissionProtocol.tick at >= 20 Hz sim


@dataclass(frozen=True)
class FleetStats:
    sim_time_s: float
    wall_time_s: float
    cpu_time_s: float
    ticks: int
    achieved_speed: float


class SimFleet:
    """`async with SimFleet(specs, ports=SimPorts(...), speed_factor=10.0) as fleet: ...`"""

    def __init__(
        self,
        specs: Sequence[VehicleSpec],
        *,
        ports: SimPorts | None = None,
        speed_factor: float = 1.0,
        stream_profile: StreamProfile = "px4",
        tick_hz: float = 50.0,
        seed: int = 0,
        datalink_timeout_s: float | None = 10.0,
    ) -> None:
        """`datalink_timeout_s`: PX4's COM_DL_LOSS_T in sim seconds (None: no data-link failsafe).
        A GCS that heartbeats at 1 Hz wall time needs it >= speed_factor + a margin."""
        if not speed_factor > 0:
            raise ValueError(f"speed_factor must be > 0, got {speed_factor}")
        if stream_profile not in ("px4", "gcs"):
            raise ValueError(f"stream_profile must be 'px4' or 'gcs', not {stream_profile!r}")
        self.ports = ports or SimPorts()
        self.speed_factor = float(speed_factor)
        self.stream_profile: StreamProfile = stream_profile
        self.tick_s = 1.0 / tick_hz
        self.physics = Physics()
        self._sim_s = 0.0
        self._wall_at_sim = 0.0
        self._ticks = 0
        self._in_tick = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stack: contextlib.AsyncExitStack | None = None
        self._started_wall = 0.0
        self._started_cpu = 0.0
        messages = stream_messages()
        instances: set[int] = set()
        self.vehicles: list[SimVehicle] = []
        for index, spec in enumerate(specs):
            instance = index if spec.instance is None else spec.instance
            if instance < 0 or instance > 253:
                raise BadVehicleSpec(index, f"instance {instance} gives no valid system id (1..254)")
            if instance in instances:
                raise BadVehicleSpec(index, f"instance {instance} is used twice")
            instances.add(instance)
            self.vehicles.append(
                SimVehicle(
                    spec,
                    instance=instance,
                    physics=self.physics,
                    clock=self.now_s,
                    messages=messages,
                    stream_profile=stream_profile,
                    seed=seed,
                    datalink_timeout_s=datalink_timeout_s,
                )
            )

    # --- clock --------------------------------------------------------------------------------
    def now_s(self) -> float:
        """Simulated seconds since the fleet started (advances between ticks too)."""
        if not self._tasks or self._in_tick:
            # Inside a tick everything happens at the tick's instant: what the tick decides and
            # what it stamps on messages must agree, whatever the tick's own CPU time.
            return self._sim_s
        ahead = (time.monotonic() - self._wall_at_sim) * self.speed_factor
        return self._sim_s + min(max(ahead, 0.0), MAX_LAG_TICKS * self.tick_s * self.speed_factor)

    def vehicle(self, sysid: int) -> SimVehicle:
        for v in self.vehicles:
            if v.sysid == sysid:
                return v
        raise KeyError(f"no simulated vehicle with system id {sysid}")

    def stats(self) -> FleetStats:
        wall = time.monotonic() - self._started_wall
        cpu = time.process_time() - self._started_cpu
        return FleetStats(self._sim_s, wall, cpu, self._ticks, self._sim_s / wall if wall > 0 else 0.0)

    # --- lifecycle ----------------------------------------------------------------------------
    async def __aenter__(self) -> SimFleet:
        try:
            for v in self.vehicles:
                try:
                    await v.open(self.ports)
                except OSError as exc:
                    raise PortsUnavailable(self.ports.bind_host, _failed_port(self.ports, v), str(exc)) from exc
        except BaseException:
            self._close_all()
            raise
        self._wall_at_sim = time.monotonic()
        self._started_wall = self._wall_at_sim
        self._started_cpu = time.process_time()
        # A TaskGroup ties the timers to the caller: a crashing tick cancels the code inside
        # `async with`, and the crash is raised on the way out instead of being lost.
        self._stack = contextlib.AsyncExitStack()
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._tasks = [
            group.create_task(self._run(), name="sitl-fleet-tick"),
            group.create_task(self._protocol_timer(), name="sitl-fleet-protocol-timer"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the timers and close every socket; re-raises a crash of the scheduler, if any."""
        tasks, self._tasks = self._tasks, []
        stack, self._stack = self._stack, None
        for task in tasks:
            task.cancel()
        try:
            if stack is not None:
                try:
                    await stack.aclose()
                except BaseExceptionGroup as group:
                    # Our two timers are the group's only tasks: hand the caller the crash itself.
                    crashes = [e for e in group.exceptions if not isinstance(e, asyncio.CancelledError)]
                    if len(crashes) == 1:
                        raise crashes[0] from None
                    raise
        finally:
            self._close_all()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    for v in self.vehicles:
                        await v.wait_closed()

    def _close_all(self) -> None:
        for v in self.vehicles:
            v.close()

    # --- scheduler ------------------------------------------------------------------------------
    async def _run(self) -> None:
        next_wall = time.monotonic()
        while True:
            next_wall += self.tick_s
            delay = next_wall - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_wall = time.monotonic()  # behind: do not try to catch up with a burst
                await asyncio.sleep(0)
            self._tick()

    def _tick(self) -> None:
        wall = time.monotonic()
        dt = min((wall - self._wall_at_sim) * self.speed_factor, MAX_LAG_TICKS * self.tick_s * self.speed_factor)
        self._wall_at_sim = wall
        if dt <= 0:
            return
        steps = min(MAX_PHYSICS_STEPS_PER_TICK, max(1, math.ceil(dt / PHYSICS_DT_S - 1e-9)))
        sub = dt / steps
        for _ in range(steps):
            self.physics.step(sub)
        self._sim_s += dt
        now = self._sim_s
        self._in_tick = True
        try:
            for v in self.vehicles:
                v.tick(now)
            for v in self.vehicles:
                v.emit_streams(now)
        finally:
            self._in_tick = False
        self._ticks += 1

    async def _protocol_timer(self) -> None:
        period = max(0.002, PROTOCOL_TICK_SIM_S / self.speed_factor)
        while True:
            await asyncio.sleep(period)
            for v in self.vehicles:
                if v.protocol.busy:
                    v.protocol.tick()


def _failed_port(ports: SimPorts, v: SimVehicle) -> int:
    # Which of the two sockets failed is not known here; name the GCS one unless it is open.
    gcs = v.gcs_link
    if gcs is not None and gcs._transport is not None:
        return ports.api_listen_base + v.instance
    return ports.gcs_listen_base + v.instance
