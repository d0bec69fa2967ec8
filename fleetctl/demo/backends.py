"""The parts of a demo that can be embedded or real: the MQTT broker (amqtt in this process, or
--broker), the store (SQLite in the output folder, or --store), the vehicles (the built-in simulator
in this process, or real PX4 SITL with --px4-dir)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fleetctl.bus import BrokerSettings
from fleetctl.bus.embedded import EmbeddedBroker
from fleetctl.errors import ConfigError, FleetError
from sitl.vehicle import VehicleSpec

log = logging.getLogger(__name__)

#: Real PX4 SITL on 2 cores keeps up while vehicles x speed factor stays within this (px4-notes.md).
PX4_SPEED_BUDGET = 12.0
#: The built-in simulator's step (s): 50 Hz, the fastest stream of the "gcs" profile, at half the CPU
#: of its default 100 Hz (a whole fleet at 20x must leave room for the service on a small machine).
SIM_STEP_S = 0.02
SIM_START_S = 60.0
SIM_STOP_S = 5.0
#: How long the simulator's process may take to answer a fault (wall seconds).
FAULT_ACK_S = 5.0


@dataclass(frozen=True)
class BrokerChoice:
    settings: BrokerSettings  # what the service connects with (its client id set)
    embedded: bool

    @property
    def label(self) -> str:
        return f"embedded amqtt on {self.settings.url}" if self.embedded else self.settings.url


@contextlib.asynccontextmanager
async def broker(url: str | None, site_id: str) -> AsyncIterator[BrokerChoice]:
    """The embedded broker for the run, or the one at `url`."""
    client_id = f"fleetctl-{site_id}"
    if url is None:
        async with EmbeddedBroker() as embedded:
            yield BrokerChoice(embedded.settings(client_id=client_id), True)
        return
    try:
        # A shared broker keeps nothing of a run: its site id is fresh, its session clean (no
        # persistent session left behind for a site that never comes back), its retained messages
        # cleared at the end (fleetctl.demo.run).
        settings = BrokerSettings(url=url, client_id=client_id, persistent_session=False)
    except ValidationError as e:
        raise ConfigError(f"--broker: {e.errors()[0]['msg']}") from None
    yield BrokerChoice(settings, False)


@dataclass(frozen=True)
class StoreChoice:
    url: str
    schema: str | None  # PostgreSQL: this run's own schema (kept afterwards, for a look at the data)

    @property
    def label(self) -> str:
        from sqlalchemy.engine import make_url

        shown = make_url(self.url).render_as_string(hide_password=True)  # no password on screen
        return f"{shown} (schema {self.schema})" if self.schema else shown


def store(url: str | None, folder: Path, name: str = "fleet.db") -> StoreChoice:
    """SQLite file `name` in `folder` (the run's output folder: it stays for `fleetctl report`), or
    `url` (PostgreSQL in a fresh schema of its own, so nothing of an earlier run is recovered into
    this one)."""
    if url is None:
        return StoreChoice(f"sqlite+aiosqlite:///{(folder / name).resolve()}", None)
    if url.startswith("postgresql"):
        return StoreChoice(url, f"demo_{uuid.uuid4().hex[:12]}")
    return StoreChoice(url, None)


@dataclass
class SimChoice:
    sim: Any  # sitl.px4.Px4Fleet, or the simulator process
    gcs_port: int  # where every vehicle's GCS link arrives (the service listens there)
    speed: float  # the speed the vehicles run at: the demo's clock runs at it too
    backend: str  # "builtin" or "px4"
    latest: dict[str, Any] | None = None  # the built-in simulator's last account of its pace
    acks: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)  # fault id -> its answer
    faults_sent: int = 0

    async def inject(self, sysid: int, fault: str, **args: Any) -> None:
        """Inject a fault (a `sitl.faults.Faults` method and its arguments) into the built-in
        simulator's vehicle `sysid` (fleetctl.demo.simproc's control channel). FaultRejected if
        the simulator refuses it or does not answer; PX4 has no such channel (the caller checks
        `backend` first)."""
        if self.backend != "builtin" or self.sim.stdin is None:
            raise FaultRejected(f"{fault}: only the built-in simulator takes injected faults")
        self.faults_sent += 1
        ident = self.faults_sent
        answer = self.acks[ident] = asyncio.get_running_loop().create_future()
        line = json.dumps({"id": ident, "sysid": sysid, "fault": fault, "args": args}) + "\n"
        try:
            self.sim.stdin.write(line.encode())
            await self.sim.stdin.drain()
            async with asyncio.timeout(FAULT_ACK_S):
                reply = await answer
        except (TimeoutError, ConnectionError) as e:
            raise FaultRejected(f"{fault}: the simulator did not take it ({type(e).__name__})") from e
        finally:
            self.acks.pop(ident, None)
        if not reply.get("ok"):
            raise FaultRejected(f"{fault}: {reply.get('error')}")

    def stats(self) -> dict[str, Any] | None:
        """The built-in simulator's own account of its pace (None on PX4)."""
        return self.latest

    def check(self) -> None:
        """SimulatorFailed if the simulator's process has ended."""
        if self.backend == "builtin" and self.sim.returncode is not None:
            raise SimulatorFailed(f"the simulator stopped (exit code {self.sim.returncode})")


def px4_speed(speed: float, vehicles: int) -> float:
    """The speed real PX4 SITL keeps up with for this many vehicles (at most `speed`, at least 1)."""
    return max(1.0, min(speed, PX4_SPEED_BUDGET / max(vehicles, 1)))


@contextlib.asynccontextmanager
async def simulator(site_dir: Path, specs: Sequence[VehicleSpec], speed: float, px4_dir: Path | None
                    ) -> AsyncIterator[SimChoice]:
    """The site's fleet (`specs`, from `site_dir`) on its depots: the built-in simulator in a process
    of its own (fleetctl.demo.simproc) on free loopback ports, or real PX4 SITL (SIH) from the build at
    `px4_dir` (its GCS links go to 14550, as PX4's always do)."""
    if px4_dir is not None:
        from sitl.px4 import GCS_PORT, Px4Fleet

        pace = px4_speed(speed, len(specs))
        async with Px4Fleet(px4_dir, specs, speed_factor=pace) as px4:
            yield SimChoice(px4, GCS_PORT, pace, "px4")
        return
    from sitl.ports import free_sim_ports

    ports = free_sim_ports(max(s.instance or 0 for s in specs) + 1)
    argv = [sys.executable, "-m", "fleetctl.demo.simproc", str(site_dir), "--speed", str(speed),
            "--step", str(SIM_STEP_S), "--host", ports.bind_host, "--gcs-port", str(ports.gcs_target_port),
            "--api-target-base", str(ports.api_target_base), "--gcs-listen-base", str(ports.gcs_listen_base),
            "--api-listen-base", str(ports.api_listen_base)]
    # Its own session: Ctrl-C reaches only us, and we end it (by closing its stdin) when we are done.
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, start_new_session=True)
    choice = SimChoice(proc, ports.gcs_target_port, speed, "builtin")
    assert proc.stdout is not None
    assert proc.stderr is not None
    errors: list[str] = []
    readers = [asyncio.create_task(_relay_stderr(proc.stderr, errors), name="simulator-stderr")]
    try:
        ready = asyncio.get_running_loop().create_future()
        readers.append(asyncio.create_task(_read_stdout(proc.stdout, choice, ready), name="simulator-stdout"))
        try:
            async with asyncio.timeout(SIM_START_S):
                await ready
        except (TimeoutError, EOFError):
            await _end(proc)
            tail = " | ".join(errors[-5:]) or "no output"
            raise SimulatorFailed(f"the simulator did not start (exit code {proc.returncode}): {tail}") from None
        yield choice
    finally:
        await _end(proc)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


class SimulatorFailed(FleetError):
    """The built-in simulator's process could not start, or stopped."""


class FaultRejected(FleetError):
    """A fault could not be injected (the simulator refused it, or cannot take faults)."""


async def _read_stdout(stream: asyncio.StreamReader, choice: SimChoice, ready: asyncio.Future[None]) -> None:
    while line := await stream.readline():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if "ready" in message and not ready.done():
                ready.set_result(None)
            elif "stats" in message:
                choice.latest = message["stats"]
            elif "fault_ack" in message:
                answer = choice.acks.get(message["fault_ack"])
                if answer is not None and not answer.done():
                    answer.set_result(message)
    if not ready.done():
        ready.set_exception(EOFError())


async def _relay_stderr(stream: asyncio.StreamReader, lines: list[str]) -> None:
    """The simulator's warnings (it falls behind the speed, say) into our log."""
    while raw := await stream.readline():
        line = raw.decode(errors="replace").rstrip()
        if line:
            lines.append(line)
            del lines[:-50]
            log.warning("simulator: %s", line)


async def _end(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    if proc.stdin is not None:
        proc.stdin.close()  # its signal to stop
    try:
        async with asyncio.timeout(SIM_STOP_S):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
