"""One demo run, start to end:

1. the site's chosen vehicles (a copy of the site folder with just those in its fleet) on the
   built-in simulator (or PX4), the broker (embedded or --broker), the store (SQLite in a temporary
   folder or --store) and the real service, all on one simulated clock (ScaledClock(speed, epoch));
2. the shop publishes the synthetic orders on orders/new at their simulated arrival times and reads
   every status and event back from the broker, while the fleet's tracks are sampled;
3. after --hours of simulated time, a drain: until every order has ended, or --drain simulated
   minutes have passed;
4. everything stops; the KPIs, the JSON report and the map are written to the output folder.

The output folder keeps what `fleetctl report` redraws them from (fleetctl.demo.rebuild): the store
(fleet.db, when it is SQLite), the site as the run served it (site/) and the tracks (tracks.csv).

A scenario run (fleetctl.scenario) is such a run with `RunHooks`: its own orders instead of the
synthetic stream, and a coroutine (its timeline of faults and operator actions) run beside them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from fleetctl import __version__
from fleetctl.clock import ScaledClock
from fleetctl.config import ServiceSettings
from fleetctl.demo import backends, report
from fleetctl.demo.added_zones import zones_from_events
from fleetctl.demo.fleet import choose_vehicles, site_with_fleet
from fleetctl.demo.live import DemoView, RunPhase, hms
from fleetctl.demo.options import DemoOptions
from fleetctl.demo.orders import PlannedOrder, order_stream
from fleetctl.demo.watch import Batteries, Recording, Shop
from fleetctl.errors import FleetError
from fleetctl.fleet_view import FleetMember, fleet_members, why_not_free
from fleetctl.service import Running, Service
from fleetctl.sorties.policy import ContingencySettings
from fleetctl.tracks import TrackRecorder
from planner.site import Site, load_site
from sitl.site_fleet import fleet_specs

log = logging.getLogger(__name__)

#: How long the service may take to start, and the vehicles to be ready to fly (wall seconds).
SERVICE_START_S = 90.0
FLEET_READY_S = {"builtin": 60.0, "px4": 180.0}
WAIT_STEP_S = 0.5
#: Below this share of the speed asked, the simulator did not keep up: said at the end.
SLOW_SHARE = 0.9
#: The width of output to a file or a pipe (a terminal's own width otherwise).
PLAIN_WIDTH = 200
#: Track samples per simulated second (fleetctl.tracks): the map, distances, separations, incursions.
TRACK_HZ = 1.0


#: The files of a run's output folder that a new run into the same folder replaces.
STORE_FILE = "fleet.db"
SITE_FOLDER = "site"


@dataclass
class DemoResult:
    exit_code: int
    out_dir: Path
    report_path: Path
    map_path: Path | None
    data: dict[str, Any]
    store: backends.StoreChoice | None = None  # where the run's store is (kept after the run)
    site: Site | None = None  # the site as the run served it (its fleet: the vehicles used)
    recording: Recording | None = None  # the tracks and batteries sampled


@dataclass
class RunContext:
    """What a hook sees of a run in progress: everything is running and the fleet is ready."""

    site: Site
    members: dict[str, FleetMember]
    running: Running
    sim: backends.SimChoice
    shop: Shop
    clock: ScaledClock
    start: datetime  # simulated time the order stream started


@dataclass(frozen=True)
class RunHooks:
    """How a scenario run differs from a demo day."""

    #: The orders to send, instead of the synthetic stream.
    orders: list[PlannedOrder] | None = None
    #: Runs beside the order stream once the fleet is ready; the drain also waits for it to end.
    #: What it raises stops the run (it reports its own failures otherwise).
    during: Callable[[RunContext], Coroutine[Any, Any, None]] | None = None
    #: The first words of the header line and the map's title.
    title: str = "fleetctl demo"
    #: The service's contingency policy (None: the default one).
    contingencies: ContingencySettings | None = None


async def run_demo(options: DemoOptions, console: Console | None = None, *, handle_sigint: bool = False,
                   hooks: RunHooks | None = None) -> DemoResult:
    """Run a demo (see the module docstring); FleetError (ConfigError for bad options) before
    anything starts, when the options cannot be served."""
    opts = options.checked()
    hooks = hooks or RunHooks()
    console = console or Console()
    if not console.is_terminal and console.width < PLAIN_WIDTH:
        console.width = PLAIN_WIDTH  # a file or a pipe: tables as wide as they need, never wrapped
    wall0 = time.monotonic()
    out = opts.out_dir(datetime.now())
    source = await asyncio.to_thread(load_site, opts.site_dir)
    vehicle_ids = choose_vehicles(source, opts.quads, opts.robots, opts.vehicles)
    out.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_clear_earlier_run, out)
    site_dir = site_with_fleet(opts.site_dir, vehicle_ids, out / SITE_FOLDER)
    site = await asyncio.to_thread(load_site, site_dir)
    # With a shared broker, this run's topics (and the service's persistent session) are its own.
    site_id = site.name if opts.broker is None else f"{site.name}-demo-{uuid.uuid4().hex[:6]}"
    members = fleet_members(site)
    kinds = {m.kind for m in members.values()}
    orders = hooks.orders if hooks.orders is not None else order_stream(
        site, hours=opts.hours, per_hour=opts.orders_per_hour, seed=opts.seed, drones="drone" in kinds,
        robots="robot" in kinds, robot_depots=frozenset(m.depot for m in members.values() if m.kind == "robot"))
    store = backends.store(opts.store, out, STORE_FILE)
    run = _Run(opts, console, site, site_id, members, orders, store, out, wall0, handle_sigint, hooks)
    data = await run.execute(site_dir)
    map_path = await asyncio.to_thread(report.draw_map, site, run.shop, run.recording, out / "map.png",
                                       map_title(hooks.title, site, data), zones_from_events(run.shop.zone_events))
    tracks_path = await asyncio.to_thread(report.write_tracks, run.recording, out / "tracks.csv")
    data["timing"]["total_wall_s"] = round(time.monotonic() - wall0, 1)
    data["title"] = hooks.title
    data["files"] = {"report": str(out / "report.json"), "map": str(map_path), "tracks": str(tracks_path),
                     "site": str(site_dir), **({"store": str(out / STORE_FILE)} if opts.store is None else {})}
    report_path = report.write_json(data, out / "report.json")
    report.show(console, data)
    k = data["kpis"]["orders"]
    stopped = data["timing"]["stopped_early"]
    if k["open"]:
        when = "the run was stopped" if stopped else f"the drain period ran out (--drain {opts.drain_min:g} min)"
        console.print(f"[yellow]{k['open']} orders had not ended when {when}[/yellow]", soft_wrap=True)
    pace = data["timing"]["speed_up"]
    if pace < SLOW_SHARE * data["timing"]["speed"]:
        console.print(f"[yellow]the simulator ran at {pace:.1f}x of the {data['timing']['speed']:g}x asked (the host "
                      "was too busy): vehicles moved slower than the clock, so times above are pessimistic; a lower "
                      "--speed avoids it[/yellow]", soft_wrap=True)
    console.print(f"report: {report_path}", soft_wrap=True, highlight=False)
    console.print(f"map:    {map_path}", soft_wrap=True, highlight=False)
    return DemoResult(130 if stopped else 0, out, report_path, map_path, data, store, site, run.recording)


def map_title(title: str, site: Site, data: dict[str, Any]) -> str:
    k = data["kpis"]
    c = k["orders"]
    rate = k["on_time_rate"]
    on_time = f", {100.0 * rate:.0f} % on time" if rate is not None else ""
    return (f"{title}, {site.name}: {c['received']} orders, {c['delivered']} delivered{on_time} "
            f"({_span(data)} at {data['timing']['speed']:g}x, seed {data['seed']})")


def _span(data: dict[str, Any]) -> str:
    """The simulated time the run covered (a scenario's order stream may last a second)."""
    simulated_s = float(data["timing"].get("simulated_s") or data["hours"] * 3600.0)
    return f"{simulated_s / 3600.0:.1f} h" if simulated_s >= 5400.0 else f"{simulated_s / 60.0:.0f} min"


def _clear_earlier_run(out: Path) -> None:
    """An earlier run's store and site copy in `out` go: the service would recover that run's orders
    into this one, and the site copy is made afresh."""
    for name in (STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm"):
        (out / name).unlink(missing_ok=True)
    if (out / SITE_FOLDER / "site.toml").is_file():
        shutil.rmtree(out / SITE_FOLDER)


class _Run:
    def __init__(self, opts: DemoOptions, console: Console, site: Site, site_id: str,
                 members: dict[str, FleetMember], orders: list[PlannedOrder], store: backends.StoreChoice,
                 out: Path, wall0: float, handle_sigint: bool, hooks: RunHooks) -> None:
        self.opts = opts
        self.console = console
        self.site = site
        self.site_id = site_id
        self.members = members
        self.orders = orders
        self.store = store
        self.out = out
        self.wall0 = wall0
        self.handle_sigint = handle_sigint
        self.hooks = hooks
        self.stop = asyncio.Event()
        self.shop: Shop
        self.recording: Recording

    async def execute(self, site_dir: Path) -> dict[str, Any]:
        opts, members = self.opts, self.members
        specs = fleet_specs(self.site)
        async with contextlib.AsyncExitStack() as stack:
            broker = await stack.enter_async_context(backends.broker(opts.broker, self.site_id))
            sim = await stack.enter_async_context(backends.simulator(site_dir, specs, opts.speed, opts.px4_dir))
            if sim.speed != opts.speed:
                self.console.print(f"[yellow]real PX4 SITL with {len(specs)} vehicles keeps up at {sim.speed:g}x "
                                   f"at most: the demo runs at that speed[/yellow]", soft_wrap=True)
            epoch = datetime.now(UTC)
            settings = ServiceSettings(site=site_dir, site_id=self.site_id, store=self.store.url,
                                       store_schema=self.store.schema, broker=broker.settings,
                                       mavlink=f"udpin://127.0.0.1:{sim.gcs_port}", speed_factor=sim.speed,
                                       sim_epoch=epoch, contingencies=self.hooks.contingencies or ContingencySettings())
            clock = ScaledClock(sim.speed, epoch)
            self._header(sim, broker)
            # The shop listens before the service starts (it misses nothing), and outlives it: on a
            # shared broker it then clears this run's retained messages (nothing publishes them again).
            shop = await stack.enter_async_context(
                Shop.connect(broker.settings, self.site_id, clock, {v: m.kind for v, m in members.items()}))
            if not broker.embedded:
                stack.push_async_callback(_quietly, shop.clear_retained)
            service, running = await stack.enter_async_context(_service(settings))
            await self._fleet_ready(running, service, FLEET_READY_S[sim.backend])
            start = clock.now()
            names = {m.sysid: v for v, m in members.items()}
            recording = Recording(
                TrackRecorder(running.fleet, self.site.frame, clock, names=names, rate_hz=TRACK_HZ),
                Batteries({v: m.model.battery_wh for v, m in members.items()}, clock, _battery(running, members)),
                start)
            self.shop, self.recording = shop, recording
            phase = RunPhase(start, opts.hours * 3600.0, opts.drain_min * 60.0)
            view = DemoView(self.console, shop, clock, phase, f"{self.site.name} x{clock.speed_factor:g}")
            run_wall0 = time.monotonic()
            startup_wall = run_wall0 - self.wall0
            context = RunContext(self.site, members, running, sim, shop, clock, start)
            async with view.showing(opts.live):
                drained = await self._day(shop, recording, clock, phase, service, sim, context)
            run_wall = time.monotonic() - run_wall0
            simulated_s = (clock.now() - start).total_seconds()
            recording.sample()
            sim_stats = sim.stats()
        self.console.print(f"stopped after {hms(simulated_s)} simulated in {run_wall:.0f} s", soft_wrap=True)
        clock_speed = simulated_s / run_wall if run_wall > 0 else 0.0
        return {
            "fleetctl_version": __version__,
            "site": self.site.name, "site_id": self.site_id, "seed": opts.seed, "hours": opts.hours,
            "orders_per_hour": opts.orders_per_hour, "drain_min": opts.drain_min,
            "vehicles_used": list(members),
            "backends": {"vehicles": "PX4 SITL (SIH)" if sim.backend == "px4" else "built-in simulator",
                         "broker": broker.label, "store": self.store.label},
            "started_at": start.isoformat(),
            "timing": {
                "speed": sim.speed, "simulated_s": round(simulated_s, 1), "startup_wall_s": round(startup_wall, 1),
                "run_wall_s": round(run_wall, 1), "total_wall_s": None,
                # The clock runs at `speed` by construction; the simulator says whether the vehicles did.
                "clock_speed_up": round(clock_speed, 2),
                "speed_up": sim_stats["achieved_speed"] if sim_stats else round(clock_speed, 2),
                "simulator": sim_stats, "drained": drained, "stopped_early": self.stop.is_set(),
            },
        } | report.build(shop, recording, self.site, {})

    def _header(self, sim: backends.SimChoice, broker: backends.BrokerChoice) -> None:
        opts = self.opts
        n_drones = sum(1 for m in self.members.values() if m.kind == "drone")
        n_robots = len(self.members) - n_drones
        vehicles = "built-in simulator" if sim.backend == "builtin" else f"PX4 SITL from {opts.px4_dir}"
        self.console.print(
            f"{self.hooks.title}: site {self.site.name}, {_n(n_drones, 'drone')} + {_n(n_robots, 'robot')} "
            f"({', '.join(self.members)}), {len(self.orders)} orders over {opts.hours:g} h simulated "
            f"(~{opts.orders_per_hour:g}/h, seed {opts.seed}) at {sim.speed:g}x. Vehicles: {vehicles}; broker: "
            f"{broker.label} (topics fleet/{self.site_id}/...); store: {self.store.label}; output: {self.out}/",
            soft_wrap=True, highlight=False)

    async def _fleet_ready(self, running: Running, service: asyncio.Task[None], timeout_s: float) -> None:
        """Until every vehicle is heard and could take a sortie (or `timeout_s`: then it goes on with
        the ones that are, saying which are not)."""
        deadline = time.monotonic() + timeout_s
        while True:
            _check(service)
            why = {}
            for vid, member in self.members.items():
                vehicle = running.fleet.vehicles.get(member.sysid)
                reason = why_not_free(vehicle.state if vehicle else None, busy=False, grounded=False)
                if reason is not None:
                    why[vid] = reason
            if not why:
                return
            if time.monotonic() > deadline:
                self.console.print(f"[yellow]not ready after {timeout_s:.0f} s: "
                                   f"{'; '.join(f'{v}: {r}' for v, r in why.items())}[/yellow]", soft_wrap=True)
                return
            await asyncio.sleep(WAIT_STEP_S)

    async def _day(self, shop: Shop, recording: Recording, clock: ScaledClock, phase: RunPhase,
                   service: asyncio.Task[None], sim: backends.SimChoice, context: RunContext) -> bool:
        """The order stream (and the hook's coroutine beside it), then the drain. True if every order
        ended (and the hook's coroutine did)."""
        loop = asyncio.get_running_loop()
        if self.handle_sigint:
            loop.add_signal_handler(signal.SIGINT, self._interrupted)
        tasks = [asyncio.create_task(recording.run(), name="demo-recording"),
                 asyncio.create_task(_produce(shop, self.orders, clock, phase.start), name="demo-orders")]
        if self.hooks.during is not None:
            tasks.append(asyncio.create_task(self.hooks.during(context), name="demo-hook"))
        watched = [service, *tasks, *([shop.listener] if shop.listener else [])]

        def over() -> bool:
            return all(t.done() for t in tasks[1:]) and shop.all_terminal()

        try:
            phase.name = "orders"
            stream_end = phase.start + timedelta(seconds=phase.stream_s)
            while clock.now() < stream_end and not self.stop.is_set():
                _check(*watched)
                sim.check()
                await _sleep_or(self.stop, min(WAIT_STEP_S, max(0.01, clock.wall_s(
                    (stream_end - clock.now()).total_seconds()))))
            phase.name = "drain"
            drain_end = stream_end + timedelta(seconds=phase.drain_s)
            while not over() and clock.now() < drain_end and not self.stop.is_set():
                _check(*watched)
                sim.check()
                await shop.changed(WAIT_STEP_S)
            phase.name = "done"
            return over()
        finally:
            if self.handle_sigint:
                loop.remove_signal_handler(signal.SIGINT)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _interrupted(self) -> None:
        self.console.print("interrupted: stopping, the report covers what happened so far (Ctrl-C again aborts)",
                           soft_wrap=True)
        self.stop.set()
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)


async def _quietly(tidy_up: Callable[[], Awaitable[None]]) -> None:
    try:
        await tidy_up()
    except Exception as e:  # a tidy-up only: the run itself is done
        log.warning("could not clear the run's retained messages: %s", e)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


async def _produce(shop: Shop, orders: list[PlannedOrder], clock: ScaledClock, start: datetime) -> None:
    for order in orders:
        await clock.sleep((start + timedelta(seconds=order.at_s) - clock.now()).total_seconds())
        await shop.send(order)


async def _sleep_or(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


def _check(*tasks: asyncio.Task[Any]) -> None:
    """Raise what stopped any of `tasks` (the service, the shop's listener, the order producer, the
    recorder); all but the producer must run until the end."""
    for task in tasks:
        if not task.done() or task.cancelled():
            continue
        error = task.exception()
        if error is not None:
            raise FleetError(f"{task.get_name()} stopped: {error}") from error
        if task.get_name() in _MUST_RUN:
            raise FleetError(f"{task.get_name()} stopped")


_MUST_RUN = frozenset({"fleetctl-service", "demo-shop-listener", "demo-recording"})


def _battery(running: Running, members: dict[str, FleetMember]) -> Callable[[str], float | None]:
    def read(vehicle_id: str) -> float | None:
        vehicle = running.fleet.vehicles.get(members[vehicle_id].sysid)
        return None if vehicle is None else vehicle.state.battery_percent
    return read


@contextlib.asynccontextmanager
async def _service(settings: ServiceSettings) -> AsyncIterator[tuple[asyncio.Task[None], Running]]:
    """The real service in this process, until the block ends."""
    service = Service(settings)
    task = asyncio.create_task(service.run(), name="fleetctl-service")
    ready = asyncio.create_task(service.ready.wait())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=SERVICE_START_S, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises what stopped it
            raise FleetError("the service stopped while starting")
        if ready not in done:
            raise FleetError(f"the service did not start within {SERVICE_START_S:.0f} s")
        assert service.running is not None
        yield task, service.running
    finally:
        ready.cancel()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception as e:  # what stopped it mid-run was raised already (_check)
            log.warning("the service ended with %s: %s", type(e).__name__, e)
