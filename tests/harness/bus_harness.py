"""Test support for fleetctl.bus: a Mosquitto of our own (configured from the shipped examples), a
TCP proxy that can cut a client off its broker, and small helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fleetctl.bus
from fleetctl.bus import BrokerSettings, Bus, IntakeMessage, Received, Subscription
from fleetctl.bus.asyncapi import EXAMPLES
from fleetctl.bus.topics import TopicKind

EXAMPLE_FILES = Path(fleetctl.bus.__file__).parent / "examples"
SITE = "helsinki"  # the site acl.example grants the "service" account
PASSWORDS = {"service": "service-secret", "producer": "producer-secret", "operator": "operator-secret",
             "viewer": "viewer-secret"}
# Fast reconnects: the tests wait for them.
DEADLINE_S = 10.0  # how long a test waits for something that should come at once
FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.4, "connect_timeout_s": 3.0, "publish_timeout_s": 5.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a broker certificate for 127.0.0.1/localhost (openssl CLI)."""
    openssl = shutil.which("openssl")
    assert openssl is not None
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True, timeout=30)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=fleetctl test CA")
    run("req", *ec, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.crt", "-days", "2", "-extfile", "san.ext")
    return TlsFiles(directory / "ca.crt", directory / "broker.crt", directory / "broker.key")


def render_config(directory: Path, port: int, *, tls: TlsFiles | None, tls_port: int | None) -> str:
    """examples/mosquitto.conf with this test's ports and files (and autosave every second, so a
    SIGKILLed broker keeps its sessions)."""
    lines: list[str] = []
    skipping = False  # inside the TLS listener's block, when there is no TLS
    for line in (EXAMPLE_FILES / "mosquitto.conf").read_text().splitlines():
        if line.startswith("listener 8883"):
            if tls is None:
                skipping = True
                continue
            line = f"listener {tls_port} 127.0.0.1"
        elif skipping:
            if line.strip():
                continue
            skipping = False
        replacements = {
            "listener 1883 127.0.0.1": f"listener {port} 127.0.0.1",
            "/etc/mosquitto/fleetctl.passwd": str(directory / "passwd"),
            "/etc/mosquitto/fleetctl.acl": str(directory / "acl"),
            "/var/lib/mosquitto/": f"{directory}/",
            "log_dest syslog": f"log_dest file {directory / 'mosquitto.log'}",
            "autosave_interval 30": "autosave_interval 1",
        }
        if tls is not None:
            replacements |= {"/etc/mosquitto/certs/broker.crt": str(tls.cert),
                             "/etc/mosquitto/certs/broker.key": str(tls.key)}
        for old, new in replacements.items():
            line = line.replace(old, new)
        lines.append(line)
    if os.geteuid() == 0:
        # Started as root, Mosquitto switches to the "mosquitto" user, which cannot read pytest's
        # private tmp_path: stay root (tests only).
        lines.append("user root")
    return "\n".join(lines) + "\n"


class Mosquitto:
    """A Mosquitto subprocess on its own port and directory, configured from the shipped examples
    (accounts service/producer/operator/viewer with acl.example)."""

    def __init__(self, directory: Path, *, tls: TlsFiles | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port() if tls is not None else None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def settings(self, user: str | None = "service", **overrides: Any) -> BrokerSettings:
        fields: dict[str, Any] = {"url": self.url, **FAST}
        if user is not None:
            fields |= {"username": user, "password": PASSWORDS[user]}
        return BrokerSettings.model_validate(fields | overrides)

    async def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        passwd = self.directory / "passwd"
        for i, (user, password) in enumerate(PASSWORDS.items()):
            create = ["-c"] if i == 0 else []
            process = await asyncio.create_subprocess_exec(
                "mosquitto_passwd", *create, "-b", str(passwd), user, password,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            async with asyncio.timeout(10):
                _, err = await process.communicate()
            assert process.returncode == 0, err
        shutil.copy(EXAMPLE_FILES / "acl.example", self.directory / "acl")
        config = render_config(self.directory, self.port, tls=self.tls, tls_port=self.tls_port)
        (self.directory / "mosquitto.conf").write_text(config)

    async def start(self) -> None:
        assert self._process is None or self._process.returncode is not None
        self._process = await asyncio.create_subprocess_exec(
            "mosquitto", "-c", str(self.directory / "mosquitto.conf"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        async with asyncio.timeout(10):
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(f"mosquitto exited with {self._process.returncode}: {self.log()}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def save(self) -> None:
        """Have Mosquitto write its persistence file now (SIGUSR1), and wait until it has: what a
        SIGKILL cannot lose. (autosave_interval works too, but only to the second, and late.)"""
        db = self.directory / "mosquitto.db"
        before = db.stat().st_mtime_ns if db.exists() else None
        assert self._process is not None
        self._process.send_signal(signal.SIGUSR1)
        for _ in range(500):  # a file has no event to wait for: poll, for 5 s at most
            if db.exists() and db.stat().st_mtime_ns != before:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError("mosquitto did not save its persistence file")

    async def kill(self) -> None:
        """SIGKILL: no goodbye to clients, no final save of the persistence file."""
        await self._signal(signal.SIGKILL)

    async def stop(self) -> None:
        await self._signal(signal.SIGTERM)

    async def _signal(self, signum: int) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signum)
        async with asyncio.timeout(10):
            await process.wait()

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text() if path.exists() else ""


@contextlib.asynccontextmanager
async def running_mosquitto(directory: Path, *, tls: TlsFiles | None = None) -> AsyncIterator[Mosquitto]:
    broker = Mosquitto(directory, tls=tls)
    await broker.prepare()
    await broker.start()
    try:
        yield broker
    finally:
        await broker.kill()


class CuttableProxy:
    """A TCP forwarder in front of the broker that can cut every connection through it (and refuse new
    ones) until resumed: a network outage for one client while the broker stays up."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            async with asyncio.timeout(5):
                await self._server.wait_closed()

    def cut(self) -> None:
        self._cut = True
        for writer in list(self._writers):
            writer.transport.abort()  # an RST, as when a link dies, not a polite FIN
        self._writers.clear()

    def resume(self) -> None:
        self._cut = False

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._cut:
            client_writer.transport.abort()
            return
        try:
            async with asyncio.timeout(5):
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except (OSError, TimeoutError):
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_pump(client_reader, upstream_writer), name="proxy-up")
                group.create_task(_pump(upstream_reader, client_writer), name="proxy-down")
        except* (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.transport.abort()


async def collect(subscription: Subscription, count: int) -> list[Received]:
    """The next `count` messages of a subscription (TimeoutError if they do not come)."""
    received: list[Received] = []
    async with asyncio.timeout(DEADLINE_S):
        while len(received) < count:
            received.append(await subscription.get())
    return received


async def nothing_more(subscription: Subscription, wait_s: float = 0.3) -> list[Received]:
    """Whatever else arrives within `wait_s` (expected: nothing)."""
    extra: list[Received] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            while True:
                extra.append(await subscription.get())
    return extra


async def take(bus: Bus, count: int) -> list[IntakeMessage]:
    """The next `count` intake messages (TimeoutError if they do not come)."""
    stream = bus.intake().__aiter__()
    async with asyncio.timeout(DEADLINE_S):
        return [await anext(stream) for _ in range(count)]


async def no_intake(bus: Bus, wait_s: float = 0.3) -> bool:
    """Whether no intake message arrives within `wait_s`."""
    stream = bus.intake().__aiter__()
    try:
        async with asyncio.timeout(wait_s):
            await anext(stream)
    except TimeoutError:
        return True
    return False


def order(order_id: str) -> bytes:
    """The example order under another id, as a producer would send it."""
    return EXAMPLES[TopicKind.ORDERS_NEW].model_copy(update={"order_id": order_id}).model_dump_json().encode()


def order_ids(messages: list[IntakeMessage]) -> list[str]:
    return [json.loads(m.payload)["order_id"] for m in messages]
