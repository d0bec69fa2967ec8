"""What bench/intake.py and bench/fanout.py share: cores and pinning, CPU of other processes sampled
over time (psutil), percentiles, the local broker's process, and tidying the broker after a run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import psutil

# The bench's own clients never hold a small packet back for the peer's delayed ACK (Nagle): that
# would add up to 40 ms to what is measured (see fleetctl/bus/client.py, which does the same).
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
SHARED_MACHINE_NOTE = ("Figures are from a shared 2-core machine (other sessions' work, Mosquitto and "
                       "PostgreSQL run on the same cores): compare columns of one run, not runs.")


def usable_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin(pid: int, core: int | None) -> bool:
    """Pin process `pid` (0: this one) to `core`; False where the OS will not (the figures then say so)."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(pid, {core})
    except OSError:
        return False
    return True


def percentile(values: Iterable[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    label: str
    pid: int | None  # for its CPU figure (read only)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def client(self, **kwargs: Any) -> aiomqtt.Client:
        return aiomqtt.Client(self.host, self.port, socket_options=NODELAY, **kwargs)


def system_broker(host: str = "127.0.0.1", port: int = 1883) -> Broker:
    return Broker(host, port, "installed", broker_pid(port))


@contextlib.asynccontextmanager
async def private_mosquitto() -> AsyncIterator[Broker]:
    """A Mosquitto of our own on a free port with set_tcp_nodelay true (the installed one has the
    default, false: Nagle on the broker's side, which holds a small message back until the client's
    delayed ACK, up to 40 ms). No persistence: it goes away with the run."""
    exe = shutil.which("mosquitto")
    if exe is None:
        raise RuntimeError("no mosquitto executable for a private broker")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    with tempfile.TemporaryDirectory(prefix="bench-mosquitto-") as folder:
        conf = Path(folder) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
                        "persistence false\n")
        proc = await asyncio.create_subprocess_exec(exe, "-c", str(conf), stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(100):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the private mosquitto did not start")
            yield Broker("127.0.0.1", port, "nodelay", proc.pid)
        finally:
            await stop(proc)


async def stop(proc: asyncio.subprocess.Process, timeout_s: float = 10.0) -> None:
    """SIGTERM to the process group we started (start_new_session), SIGKILL if it lingers."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


def broker_pid(port: int) -> int | None:
    """The process listening on the broker's port (read-only: its CPU is reported, nothing else)."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return int(conn.pid)
    return None


@dataclass
class CpuSampler:
    """CPU seconds of named processes, sampled every `period_s` so that a share of a core can be read
    afterwards over any window (the measurement windows are only known once a run is over)."""

    pids: dict[str, int | None]
    period_s: float = 0.2
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def _cpu(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.pids.items():
            if pid is None:
                continue
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                # children: the service spawns none, but count them should it ever do
                out[name] = t.user + t.system + t.children_user + t.children_system
        return out

    def sample(self) -> None:
        self.samples.append((time.perf_counter(), self._cpu()))

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.period_s)

    def share(self, name: str, t0: float, t1: float) -> float | None:
        """% of one core used by `name` between perf_counter times t0 and t1 (nearest samples)."""
        inside = [(t, cpu[name]) for t, cpu in self.samples if name in cpu]
        if len(inside) < 2 or t1 <= t0:
            return None
        a = min(inside, key=lambda s: abs(s[0] - t0))
        b = min(inside, key=lambda s: abs(s[0] - t1))
        if b[0] <= a[0]:
            return None
        return 100.0 * (b[1] - a[1]) / (b[0] - a[0])


async def forget_client(broker: Broker, client_id: str) -> None:
    """End a persistent session the bench made the broker keep (connect once with clean_session):
    each run uses fresh client ids, and Mosquitto would keep every one of them, on disk."""
    with contextlib.suppress(aiomqtt.MqttError, OSError):
        async with broker.client(identifier=client_id, clean_session=True):
            pass


async def clear_retained(broker: Broker, topics: Iterable[str]) -> int:
    """Delete retained messages (an empty retained publish each): a run's thousands of retained status
    and state messages would otherwise stay in Mosquitto's persistent store."""
    n = 0
    with contextlib.suppress(aiomqtt.MqttError, OSError):
        async with broker.client() as client:
            for n, topic in enumerate(topics, 1):
                await client.publish(topic, b"", qos=0, retain=True)
                if n % 500 == 0:
                    await asyncio.sleep(0)  # let paho's writer drain
            # QoS 0 has no acknowledgement: a QoS 1 publish behind them tells us they all went out
            await client.publish("bench/cleared", b"", qos=1)
    return n
