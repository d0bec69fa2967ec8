"""SimFleet: N simulated vehicles on one asyncio loop, stepped together in fixed steps.

Time: simulated time is a count of fixed steps of `STEP_S` (10 ms; PX4's SIH uses 4 ms). Every
step integrates the vectorised physics of the whole fleet, then runs each vehicle's logic, then
sends the streams due at that instant, each built from that step's state. The speed factor only
sets how fast the steps are paced against the wall clock (`sitl.pacing`), so a flight is the same
at 1x and at 20x. When the host cannot keep up, simulated time runs slower than requested, never
coarser: the fleet counts `lag_events` and `behind_s` and logs a warning. Between batches of steps
the loop reads the sockets, so commands and mission-protocol replies are handled between steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from sitl.errors import BadVehicleSpec, PortsUnavailable
from sitl.pacing import Pacer
from sitl.physics import Physics
from sitl.streams import StreamProfile
from sitl.telemetry import stream_messages
from sitl.vehicle import SimPorts, SimVehicle, VehicleSpec

# 10 ms: flights agree with 2 ms steps within 5 cm (tests/sitl/test_sim_determinism.py), while at
# 20x PX4's 4 ms step would cost half a core in physics alone.
STEP_S = 0.01
# Longest run of steps between two reads of the sockets: well under the mission protocol's 0.25 s
# (simulated) retry even at 20x, so a client's reply is read before the vehicle gives up on it.
BATCH_WALL_S = 0.004


@dataclass(frozen=True)
class FleetStats:
    """`ticks`: steps computed; `behind_s`/`lag_events`: see `SimFleet.behind_s`."""

    sim_time_s: float
    wall_time_s: float
    cpu_time_s: float
    ticks: int
    achieved_speed: float
    behind_s: float = 0.0
    lag_events: int = 0


class SimFleet:
    """`async with SimFleet(specs, ports=SimPorts(...), speed_factor=10.0) as fleet: ...`"""

    def __init__(
        self,
        specs: Sequence[VehicleSpec],
        *,
        ports: SimPorts | None = None,
        speed_factor: float = 1.0,
        stream_profile: StreamProfile = "px4",
        step_s: float = STEP_S,
        seed: int = 0,
        datalink_timeout_s: float | None = 10.0,
    ) -> None:
        """`datalink_timeout_s`: PX4's COM_DL_LOSS_T in sim seconds (None: no data-link failsafe).
        A GCS that heartbeats at 1 Hz wall time needs it >= speed_factor + a margin."""
        if not speed_factor > 0:
            raise ValueError(f"speed_factor must be > 0, got {speed_factor}")
        if not 0 < step_s <= 0.05:
            raise ValueError(f"step_s must be in (0, 0.05] s, got {step_s}")
        if stream_profile not in ("px4", "gcs"):
            raise ValueError(f"stream_profile must be 'px4' or 'gcs', not {stream_profile!r}")
        self.ports = ports or SimPorts()
        self.speed_factor = float(speed_factor)
        self.stream_profile: StreamProfile = stream_profile
        self.step_s = float(step_s)
        self.physics = Physics()
        self._steps = 0
        self._sim_s = 0.0
        self._pacer: Pacer | None = None
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
        """Simulated seconds since the fleet started: the time of the last step computed.

        It stands still between steps: what happens between them (a command, a reply) happens at
        the instant of the last step, as the messages stamped at that step say.
        """
        return self._sim_s

    @property
    def lag_events(self) -> int:
        """How often the host could not keep up and simulated time fell behind the speed factor."""
        return 0 if self._pacer is None else self._pacer.lag_events

    @property
    def behind_s(self) -> float:
        """Simulated seconds lost against speed_factor x wall time because the host was too slow."""
        return 0.0 if self._pacer is None else self._pacer.behind_s

    def vehicle(self, sysid: int) -> SimVehicle:
        for v in self.vehicles:
            if v.sysid == sysid:
                return v
        raise KeyError(f"no simulated vehicle with system id {sysid}")

    def stats(self) -> FleetStats:
        wall = time.monotonic() - self._started_wall
        cpu = time.process_time() - self._started_cpu
        return FleetStats(self._sim_s, wall, cpu, self._steps, self._sim_s / wall if wall > 0 else 0.0,
                          self.behind_s, self.lag_events)

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
        self._started_wall = time.monotonic()
        self._started_cpu = time.process_time()
        self._pacer = Pacer(self.speed_factor, self.step_s, self._started_wall,
                            name=f"simulator ({len(self.vehicles)} vehicles)")
        # A TaskGroup ties the timers to the caller: a crashing tick cancels the code inside
        # `async with`, and the crash is raised on the way out instead of being lost.
        self._stack = contextlib.AsyncExitStack()
        group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._tasks = [group.create_task(self._run(self._pacer), name="sitl-fleet-steps")]
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
                    # Our scheduler is the group's only task: hand the caller the crash itself.
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
    async def _run(self, pacer: Pacer) -> None:
        clock = time.monotonic
        while True:
            wall = clock()
            owed = pacer.owed_steps(wall, self._sim_s)
            if owed == 0:
                await asyncio.sleep(pacer.wait_wall_s(wall, self._sim_s))
                continue
            deadline = wall + BATCH_WALL_S
            for _ in range(owed):
                self._step()
                if clock() >= deadline:
                    break
            for v in self.vehicles:
                v.flush_links()
            # Behind or not, let the loop read the sockets before the next batch.
            await asyncio.sleep(0)

    def _step(self) -> None:
        """One fixed step: physics, then every vehicle's logic, then the streams due now."""
        self.physics.step(self.step_s)
        self._steps += 1
        # A product, not a running sum: stamps stay on the step grid however long the flight.
        now = self._sim_s = self._steps * self.step_s
        for v in self.vehicles:
            v.tick(now)
        for v in self.vehicles:
            v.emit_streams(now)


def _failed_port(ports: SimPorts, v: SimVehicle) -> int:
    # Which of the two sockets failed is not known here; name the GCS one unless it is open.
    gcs = v.gcs_link
    if gcs is not None and gcs._transport is not None:
        return ports.api_listen_base + v.instance
    return ports.gcs_listen_base + v.instance
