"""Order intake end to end: orders per second through the real service, side by side with a bare MQTT peer.

What one order goes through: a producer publishes it (QoS 1) on fleet/<site>/orders/new; the service
(`fleetctl serve`, in a child process pinned to one core, no vehicles, MAVLink on a free UDP port,
speed factor 1) parses and validates it, commits it to its store (SQLite in a temporary folder, or
PostgreSQL in a fresh schema dropped afterwards), acknowledges it to the broker, and its event
publisher sends the order's status (retained, QoS 1) on fleet/<site>/orders/<id>/status. A subscriber
in this process counts the statuses whose state is "accepted" and records each order's latency from
publish to status. Orders are valid (the service's own validator accepts each drop point used) and
their ids unique.

The peer, in the same run: a bare aiomqtt client in a child process pinned to the same core, that
republishes every message it receives (QoS 1, retained) to bench/<run>/orders/<id>/status with a
payload as large as the service's statuses were; the producer and subscriber here are the same code.
It is the broker's own ceiling for this pattern (publish -> consumer -> publish -> subscriber).

Brokers: the installed Mosquitto (127.0.0.1:1883, its configuration as it is) and a private Mosquitto
on a free port with set_tcp_nodelay true (the installed one leaves Nagle on: a small message it sends
waits for the client's delayed ACK, up to 40 ms, whatever the client does; see the tables).

Scenarios, each after a warm-up (one order per drop point, so the validator has priced every route):
  - flat out: N orders as fast as the broker takes them, up to 20 QoS 1 publishes awaiting PUBACK
    at once, and at most --queue-cap orders published but not yet answered, so the consumer's
    session queue at the broker stays under Mosquitto's default max_queued_messages (1000), beyond
    which the broker drops QoS 1 messages. orders/s is sustained: completions between the 10 % and
    95 % marks (start-up and the final drain left out);
  - fixed rate: --rate orders/s for --rate-seconds: latency at a load the service should carry
    easily (target p95 < 50 ms).
CPU is % of one core over the same window, from psutil: the service (or the peer's republisher), the
broker, and this process (producer and subscriber). Targets: >= 1,000 orders/s on SQLite on one core;
p95 < 50 ms at 200 orders/s. Figures are printed, never asserted. About 2 minutes with the defaults.

Run from the repository root:
    python -m bench.intake [--orders 6000] [--rate 200 --rate-seconds 10]
                           [--engines sqlite postgresql peer] [--brokers installed private]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt

from bench._measure import (
    NODELAY,
    SHARED_MACHINE_NOTE,
    Broker,
    CpuSampler,
    clear_retained,
    forget_client,
    percentile,
    pin,
    private_mosquitto,
    stop,
    system_broker,
    usable_cores,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = REPO_ROOT / "sitl" / "worlds" / "helsinki"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
WINDOW = 20  # QoS 1 publishes awaiting their PUBACK at once (paho's default in-flight limit)
# Orders published but not yet answered, at most: Mosquitto queues up to max_queued_messages (1000 by
# default) QoS 1 messages per client beyond its 20 in flight, and drops the rest; 800 leaves a margin.
QUEUE_CAP = 800
PEER_INFLIGHT = 100  # the republisher's QoS 1 publishes in flight: the service's Bus default (max_inflight)
READY_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 30.0  # after the last publish, wait this long at most for the last answers
FALLBACK_STATUS_BYTES = 300  # the peer's payload if no service ran first to measure one
PEER_LABEL = "bare peer"


# --- orders --------------------------------------------------------------------------------------


def valid_drop_points(site_id: str) -> list[str]:
    """The site's drop points that the service's own validator accepts for a 1 kg parcel now."""
    from fleetctl.errors import OrderRejected
    from fleetctl.orders.validate import OrderValidator, parse_order
    from planner.site import load_site

    site = load_site(SITE_DIR)
    validator = OrderValidator(site, site_id=site_id)
    now = datetime.now(UTC)
    ok = []
    for name in site.drop_points:
        try:
            validator.validate(parse_order(order_payload("probe-1", site_id, name, now)), now)
        except OrderRejected:
            continue
        ok.append(name)
    return ok


def order_payload(order_id: str, site_id: str, dropoff: str, now: datetime) -> bytes:
    return json.dumps({"order_id": order_id, "site": site_id, "dropoff": dropoff, "weight_kg": 1.0,
                       "window": {"earliest": now.isoformat(),
                                  "latest": (now + timedelta(hours=2)).isoformat()}}).encode()


def make_orders(prefix: str, n: int, site_id: str, drops: Sequence[str]) -> list[tuple[str, bytes]]:
    """Built before timing: unique ids, the drop points round-robin."""
    now = datetime.now(UTC)
    ids = [f"{prefix}-{i:06d}" for i in range(n)]
    return [(oid, order_payload(oid, site_id, drops[i % len(drops)], now)) for i, oid in enumerate(ids)]


# --- the producer and the status watcher ---------------------------------------------------------


@dataclass
class Scenario:
    name: str
    orders: int
    answered: int = 0  # accepted statuses received
    other: int = 0  # statuses in another state (a rejection would be a bench bug)
    rate: float | None = None  # orders/s: sustained (flat out) or achieved completions (fixed rate)
    offered: float | None = None  # orders/s published
    latencies_s: list[float] = field(default_factory=list)
    window: tuple[float, float] | None = None  # perf_counter window the rate and CPU refer to
    cap_wait_s: float = 0.0  # time the producer spent held back by the queue cap
    cpu: dict[str, float | None] = field(default_factory=dict)
    note: str = ""


class Probe:
    """Publishes orders and watches their answers on `status_filter` (…/orders/<id>/status)."""

    def __init__(self, pub: aiomqtt.Client, sub: aiomqtt.Client, orders_topic: str) -> None:
        self.pub = pub
        self.sub = sub
        self.orders_topic = orders_topic
        self.sent_at: dict[str, float] = {}
        self.done_at: dict[str, float] = {}
        self.other_state: set[str] = set()
        self.status_bytes: list[int] = []
        self._progress = asyncio.Event()

    async def listen(self) -> None:
        async for message in self.sub.messages:
            now = time.perf_counter()
            payload = message.payload
            if not isinstance(payload, bytes | bytearray) or not payload:
                continue  # an empty retained message: a clean-up, not an answer
            order_id = str(message.topic).rsplit("/", 2)[-2]
            if order_id in self.done_at or order_id not in self.sent_at:
                continue
            state = json.loads(payload).get("state")
            if state == "accepted":
                self.done_at[order_id] = now
                if len(self.status_bytes) < 1000:
                    self.status_bytes.append(len(payload))
            else:
                self.other_state.add(order_id)
            self._progress.set()

    async def _publish(self, raw: bytes, window: asyncio.Semaphore) -> None:
        try:
            await self.pub.publish(self.orders_topic, raw, qos=1)
        finally:
            window.release()

    async def _drain(self, ids: Sequence[str]) -> None:
        """Until every order of `ids` is answered, or nothing new came for DRAIN_TIMEOUT_S."""
        wanted = set(ids)
        while True:
            left = sum(1 for i in wanted if i not in self.done_at and i not in self.other_state)
            if not left:
                return
            self._progress.clear()
            try:
                async with asyncio.timeout(DRAIN_TIMEOUT_S):
                    await self._progress.wait()
            except TimeoutError:
                return

    def _finish(self, sc: Scenario, ids: Sequence[str]) -> None:
        sc.answered = sum(1 for i in ids if i in self.done_at)
        sc.other = sum(1 for i in ids if i in self.other_state)
        sc.latencies_s = [self.done_at[i] - self.sent_at[i] for i in ids if i in self.done_at]
        if sc.answered < sc.orders:
            sc.note = f"{sc.orders - sc.answered - sc.other} unanswered after {DRAIN_TIMEOUT_S:.0f} s"

    async def flat_out(self, name: str, orders: Sequence[tuple[str, bytes]], cap: int) -> Scenario:
        sc = Scenario(name, len(orders))
        window = asyncio.Semaphore(WINDOW)
        tasks: set[asyncio.Task[None]] = set()
        done_before = len(self.done_at) + len(self.other_state)
        first = time.perf_counter()
        for order_id, raw in orders:
            await window.acquire()
            if len(tasks) - (len(self.done_at) + len(self.other_state) - done_before) >= cap:
                held = time.perf_counter()
                while len(tasks) - (len(self.done_at) + len(self.other_state) - done_before) >= cap:
                    self._progress.clear()
                    await self._progress.wait()
                sc.cap_wait_s += time.perf_counter() - held
            self.sent_at[order_id] = time.perf_counter()
            task = asyncio.create_task(self._publish(raw, window))
            tasks.add(task)
        await asyncio.gather(*tasks)
        sc.offered = len(orders) / (time.perf_counter() - first)
        ids = [i for i, _ in orders]
        await self._drain(ids)
        self._finish(sc, ids)
        finished = sorted(self.done_at[i] for i in ids if i in self.done_at)
        if len(finished) >= 20:
            # sustained: from the 10 % to the 95 % mark of completions (start-up and drain left out)
            k0, k1 = int(0.10 * len(finished)), int(0.95 * len(finished)) - 1
            sc.window = (finished[k0], finished[k1])
            sc.rate = (k1 - k0) / (finished[k1] - finished[k0])
        return sc

    async def fixed_rate(self, name: str, orders: Sequence[tuple[str, bytes]], rate: float) -> Scenario:
        sc = Scenario(name, len(orders))
        window = asyncio.Semaphore(WINDOW)
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter() + 0.05
        for k, (order_id, raw) in enumerate(orders):
            # an absolute schedule: a late wake-up is made up by the next sends, not carried forward
            delay = start + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await window.acquire()
            self.sent_at[order_id] = time.perf_counter()
            tasks.append(asyncio.create_task(self._publish(raw, window)))
        end = time.perf_counter()
        await asyncio.gather(*tasks)
        sc.offered = len(orders) / (end - start)
        sc.window = (start, end)
        ids = [i for i, _ in orders]
        await self._drain(ids)
        self._finish(sc, ids)
        sc.rate = sc.answered / (end - start)
        return sc

    async def warm_up(self, orders: Sequence[tuple[str, bytes]]) -> Scenario:
        return await self.flat_out("warm-up", orders, QUEUE_CAP)


@contextlib.asynccontextmanager
async def probe(broker: Broker, orders_topic: str, status_filter: str) -> AsyncIterator[Probe]:
    run = uuid.uuid4().hex[:8]
    async with (broker.client(identifier=f"bench-producer-{run}", max_inflight_messages=WINDOW) as pub,
                broker.client(identifier=f"bench-watcher-{run}") as sub):
        pub.pending_calls_threshold = WINDOW + 10  # aiomqtt warns above 10 concurrent publishes
        await sub.subscribe(status_filter, qos=1)
        p = Probe(pub, sub, orders_topic)
        listener = asyncio.create_task(p.listen(), name="status-listener")
        try:
            yield p
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


# --- what is measured: the service, or the peer --------------------------------------------------


@dataclass
class Target:
    label: str
    pid: int
    orders_topic: str
    status_filter: str
    status_topic: str  # with {id}: for clearing the retained answers afterwards
    site_id: str
    pinned: bool
    broker: Broker


def _child_cmd(role: str, *extra: str, core: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "bench.intake", role, *extra]
    return cmd + (["--core", str(core)] if core is not None else [])


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH"))
                                                       if p)}


def _tail(path: Path, lines: int = 8) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


async def _wait_started(client: aiomqtt.Client, proc: asyncio.subprocess.Process, log: Path) -> None:
    """Until the service's event publisher says service.started: by then its store, its broker
    connection (subscribed to orders/new) and its publisher are up."""
    async def started() -> None:
        async for message in client.messages:
            with contextlib.suppress(ValueError, AttributeError):
                if isinstance(message.payload, bytes | bytearray) and \
                        json.loads(message.payload).get("kind") == "service.started":
                    return

    waiting = asyncio.create_task(started())
    deadline = time.monotonic() + READY_TIMEOUT_S
    try:
        while not waiting.done():
            if proc.returncode is not None:
                raise RuntimeError(f"the service exited ({proc.returncode}): {_tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service was not ready after {READY_TIMEOUT_S:.0f} s: {_tail(log)}")
            await asyncio.wait({waiting}, timeout=0.2)
        waiting.result()
    finally:
        waiting.cancel()


@contextlib.asynccontextmanager
async def service(broker: Broker, engine: str, postgres: str, core: int | None) -> AsyncIterator[Target]:
    from sitl.ports import free_udp_block

    site_id = f"bench{uuid.uuid4().hex[:8]}"  # fresh topics and broker session
    client_id = f"fleetctl-{site_id}"
    schema = f"bench_intake_{uuid.uuid4().hex[:10]}" if engine == "postgresql" else None
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
        store = postgres if engine == "postgresql" else f"sqlite+aiosqlite:///{Path(folder) / 'fleet.db'}"
        config = Path(folder) / "fleet.toml"
        lines = [f'site = "{SITE_DIR}"', f'site_id = "{site_id}"', f'store = "{store}"',
                 f'mavlink = "udpin://127.0.0.1:{free_udp_block(1)}"', "speed_factor = 1.0"]
        if schema:
            lines.append(f'store_schema = "{schema}"')
        lines += ["[broker]", f'url = "{broker.url}"', f'client_id = "{client_id}"']
        config.write_text("\n".join(lines) + "\n")
        log = Path(folder) / "service.log"
        async with broker.client() as watcher:
            await watcher.subscribe(f"fleet/{site_id}/events", qos=1)
            with log.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    *_child_cmd("_serve", str(config), core=core), cwd=REPO_ROOT, env=_child_env(), stdout=out,
                    stderr=subprocess.STDOUT, start_new_session=True)
            try:
                await _wait_started(watcher, proc, log)
                await watcher.unsubscribe(f"fleet/{site_id}/events")  # 2 events per order: not ours to count
                yield Target(f"fleetctl/{engine}", proc.pid, f"fleet/{site_id}/orders/new",
                             f"fleet/{site_id}/orders/+/status", f"fleet/{site_id}/orders/{{id}}/status",
                             site_id, core is not None, broker)
            finally:
                await stop(proc)
                await forget_client(broker, client_id)
                if schema:
                    await _drop_schema(postgres, schema)


async def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    except (sa.exc.SQLAlchemyError, OSError) as e:
        print(f"could not drop schema {schema}: {e}", file=sys.stderr)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def peer(broker: Broker, status_bytes: int, core: int | None) -> AsyncIterator[Target]:
    run = uuid.uuid4().hex[:8]
    prefix = f"bench/{run}"
    proc = await asyncio.create_subprocess_exec(
        *_child_cmd("_echo", broker.host, str(broker.port), f"{prefix}/orders/new", prefix, str(status_bytes),
                    core=core), cwd=REPO_ROOT, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT_S)
        if line.strip() != b"ready":
            raise RuntimeError(f"the peer did not start: {line!r}")
        yield Target(PEER_LABEL, proc.pid, f"{prefix}/orders/new", f"{prefix}/orders/+/status",
                     f"{prefix}/orders/{{id}}/status", run, core is not None, broker)
    finally:
        await stop(proc)


async def echo_main(host: str, port: int, orders_topic: str, prefix: str, size: int) -> None:
    """The peer's republisher: every message on `orders_topic` answered on <prefix>/orders/<id>/status
    with `size` bytes, QoS 1, retained, as the service answers (minus everything in between)."""
    async with aiomqtt.Client(host, port, identifier=f"bench-echo-{uuid.uuid4().hex[:8]}",
                              max_inflight_messages=PEER_INFLIGHT, socket_options=NODELAY) as client:
        client.pending_calls_threshold = PEER_INFLIGHT + 10
        await client.subscribe(orders_topic, qos=1)
        print("ready", flush=True)
        window = asyncio.Semaphore(PEER_INFLIGHT)

        async def answer(topic: str, body: bytes) -> None:
            try:
                await client.publish(topic, body, qos=1, retain=True)
            finally:
                window.release()

        async with asyncio.TaskGroup() as tg:
            async for message in client.messages:
                assert isinstance(message.payload, bytes | bytearray)
                order_id = json.loads(message.payload)["order_id"]  # the one thing it must read to answer
                body = json.dumps({"order_id": order_id, "state": "accepted", "pad": ""}).encode()
                body = body[:-2] + b"x" * max(0, size - len(body)) + b'"}'
                await window.acquire()
                tg.create_task(answer(f"{prefix}/orders/{order_id}/status", body))


# --- one measured target ------------------------------------------------------------------------


@dataclass
class TargetResult:
    label: str
    broker: str
    pinned: bool
    scenarios: list[Scenario]
    status_bytes: int | None
    error: str = ""


async def measure(target: Target, args: argparse.Namespace, drops: Sequence[str], site_id: str) -> TargetResult:
    sampler = CpuSampler({"target": target.pid, "broker": target.broker.pid, "bench": os.getpid()})
    sampling = asyncio.create_task(sampler.run(), name="cpu-sampler")
    run = uuid.uuid4().hex[:6]
    all_ids: list[str] = []
    try:
        async with probe(target.broker, target.orders_topic, target.status_filter) as p:
            warm = make_orders(f"w{run}", len(drops), site_id, drops)
            flat = make_orders(f"f{run}", args.orders, site_id, drops)
            fixed = make_orders(f"r{run}", round(args.rate * args.rate_seconds), site_id, drops)
            all_ids = [i for batch in (warm, flat, fixed) for i, _ in batch]
            await p.warm_up(warm)
            scenarios = [await p.flat_out("flat out", flat, args.queue_cap)]
            await asyncio.sleep(1.0)  # let the target settle (its publisher's and dispatcher's rounds)
            scenarios.append(await p.fixed_rate(f"{args.rate:g}/s fixed", fixed, args.rate))
            sampler.sample()
            for sc in scenarios:
                if sc.window is not None:
                    sc.cpu = {name: sampler.share(name, *sc.window) for name in ("target", "broker", "bench")}
            sizes = p.status_bytes
        return TargetResult(target.label, target.broker.label, target.pinned, scenarios,
                            round(sum(sizes) / len(sizes)) if sizes else None)
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await clear_retained(target.broker, (target.status_topic.format(id=i) for i in all_ids))


# --- output ---------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def render(results: list[TargetResult], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(170, Console().width))
    brokers = list(dict.fromkeys(r.broker for r in results))
    peers = {r.broker: r for r in results if r.label == PEER_LABEL}
    engines = list(dict.fromkeys(r.label for r in results if r.label != PEER_LABEL))
    for engine in engines or ["peer only"]:
        table = Table(title=f"Order intake end to end: {engine} vs the bare aiomqtt peer")
        for col in ("broker", "target", "scenario", "orders", "accepted", "orders/s", "sent/s", "p50 ms",
                    "p95 ms", "p99 ms", "max ms", "target CPU %", "broker CPU %", "bench CPU %", "capped s"):
            table.add_column(col, justify="left" if col in ("broker", "target", "scenario") else "right")
        for broker in brokers:
            shown = [r for r in results if r.broker == broker and r.label == engine]
            shown += [peers[broker]] if broker in peers else []
            for r in shown:
                # the title names the engine: the cell only says which side of the comparison
                target = ("peer" if r.label == PEER_LABEL else "fleetctl") + ("" if r.pinned else " (not pinned)")
                if r.error:
                    table.add_row(broker, target, "[red]failed[/red]", *["-"] * 12)
                    continue
                for sc in r.scenarios:
                    lat = sc.latencies_s
                    table.add_row(
                        broker, target, sc.name, f"{sc.orders:,}",
                        f"{sc.answered:,}" + (f" ({sc.other} other)" if sc.other else ""),
                        "-" if sc.rate is None else f"{sc.rate:,.0f}",
                        "-" if sc.offered is None else f"{sc.offered:,.0f}",
                        *(_ms(percentile(lat, q)) for q in (0.5, 0.95, 0.99)), _ms(max(lat, default=None)),
                        _pct(sc.cpu.get("target")), _pct(sc.cpu.get("broker")), _pct(sc.cpu.get("bench")),
                        f"{sc.cap_wait_s:.1f}",
                    )
            table.add_section()
        console.print(table)
    console.print(
        "orders/s: flat out = sustained completions (accepted statuses received) between the 10 % and 95 % "
        "marks; fixed = accepted statuses received / scheduled sending time. sent/s: orders published per "
        "second. Latency: publish call -> accepted status received, per order; flat out includes the wait "
        f"in the queue the producer keeps full (up to {args.queue_cap} orders), so there it is queueing, not "
        "service time. target CPU: the service process (or the peer's republisher), pinned to one core; "
        "broker: Mosquitto (unpinned); bench: this process (producer + subscriber, on the other core). "
        f"capped: time the producer waited because {args.queue_cap} orders were unanswered (Mosquitto's "
        "max_queued_messages is 1000). Brokers: installed = the Mosquitto on 127.0.0.1:1883 as configured "
        "(set_tcp_nodelay false, its default); nodelay = a private Mosquitto started for this run with "
        "set_tcp_nodelay true. Every client here, the service's included, sets TCP_NODELAY.")
    for r in results:
        if r.error:
            console.print(f"[red]{r.label} on {r.broker}: {r.error}[/red]")
        for sc in r.scenarios:
            if sc.note:
                console.print(f"[yellow]{r.label} on {r.broker}, {sc.name}: {sc.note}[/yellow]")
    console.print("Targets: >= 1,000 orders/s on SQLite on one core; p95 < 50 ms at 200 orders/s.")
    console.print(SHARED_MACHINE_NOTE)


# --- driver ---------------------------------------------------------------------------------------


async def run_on(broker: Broker, args: argparse.Namespace, target_core: int | None) -> list[TargetResult]:
    results: list[TargetResult] = []
    status_bytes: int | None = None
    for engine in args.engines:
        print(f"{engine} on {broker.label} ...", file=sys.stderr, flush=True)
        try:
            if engine == "peer":
                async with peer(broker, status_bytes or FALLBACK_STATUS_BYTES, target_core) as target:
                    drops = await asyncio.to_thread(valid_drop_points, target.site_id)
                    results.append(await measure(target, args, drops, target.site_id))
            else:
                async with service(broker, engine, args.postgres, target_core) as target:
                    drops = await asyncio.to_thread(valid_drop_points, target.site_id)
                    result = await measure(target, args, drops, target.site_id)
                    results.append(result)
                    status_bytes = status_bytes or result.status_bytes
        except Exception as e:  # one target failing (PostgreSQL down, say) still prints the others
            label = PEER_LABEL if engine == "peer" else f"fleetctl/{engine}"
            results.append(TargetResult(label, broker.label, False, [], None, f"{type(e).__name__}: {e}"))
    return results


async def main_async(args: argparse.Namespace) -> None:
    cores = usable_cores()
    target_core = None if args.no_pin or not cores else cores[0]
    if not args.no_pin and len(cores) > 1:
        pin(0, cores[-1])  # producer and subscriber on the other core than the target
    results: list[TargetResult] = []
    for which in args.brokers:
        if which == "installed":
            results += await run_on(system_broker(), args, target_core)
            continue
        try:
            async with private_mosquitto() as broker:
                results += await run_on(broker, args, target_core)
        except RuntimeError as e:
            print(f"no private broker: {e}", file=sys.stderr)
    render(results, args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_serve", "_echo"):
        return child_main(argv[0], argv[1:])
    p = argparse.ArgumentParser(prog="python -m bench.intake", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--orders", type=int, default=6000, help="orders in the flat-out scenario")
    p.add_argument("--rate", type=float, default=200.0, help="orders/s of the fixed-rate scenario")
    p.add_argument("--rate-seconds", type=float, default=10.0)
    p.add_argument("--queue-cap", type=int, default=QUEUE_CAP,
                   help="orders published but unanswered, at most (keep under Mosquitto's max_queued_messages)")
    p.add_argument("--engines", nargs="+", default=["sqlite", "postgresql", "peer"],
                   choices=["sqlite", "postgresql", "peer"], help="what to measure, in this order (the peer "
                   "uses the status size measured on the service)")
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL URL")
    p.add_argument("--brokers", nargs="+", default=["installed", "private"], choices=["installed", "private"],
                   help="the installed Mosquitto on 127.0.0.1:1883, and/or a private one with set_tcp_nodelay "
                   "true on a free port (needs the mosquitto executable)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the service / peer to one core")
    args = p.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


def child_main(role: str, argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("rest", nargs="+")
    p.add_argument("--core", type=int)
    args = p.parse_args(argv)
    # pinned before anything starts a thread (asyncio's executor, MAVSDK's): they inherit the core
    pin(0, args.core)
    if role == "_serve":
        from fleetctl.cli import main as fleetctl_main

        return fleetctl_main(["serve", "--config", args.rest[0]])
    host, port, orders_topic, prefix, size = args.rest
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(echo_main(host, int(port), orders_topic, prefix, int(size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
