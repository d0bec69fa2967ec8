"""Launch real PX4 SITL vehicles (PX4's SIH simulator) from a PX4 build the user points to.

    async with Px4Fleet(px4_dir, specs, speed_factor=1.0) as fleet:
        for v in fleet.vehicles:
            print(v.sysid, v.kind, v.log_path)

One px4 process per vehicle: instance id `i` (0..9), system id `i+1`, working directory
`<run_dir>/instance_<i>`, console log `<run_dir>/instance_<i>/px4.log`, its own process group.
The fleet is ready when every instance printed "Startup script returned successfully" AND its API link
(UDP 127.0.0.1:14540+i) shows a PX4 HEARTBEAT and a SYS_STATUS with the pre-arm check healthy. The
readiness listener then closes, so the ground side can bind the same port. Leaving the block stops
exactly the processes it started: SIGTERM to each group, SIGKILL after a grace period.

The vehicles speak MAVLink on PX4's fixed ports: GCS link to UDP 14550, API link to 14540+i.

CLI: `python -m sitl px4 --quads 3 --rovers 1 --site sitl/worlds/helsinki --px4-dir PATH`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from planner.errors import PlanningError
from sitl._px4_process import (
    AIRFRAMES,
    API_TARGET_PORT_BASE,
    MAX_INSTANCE,
    Px4Build,
    Px4Process,
    build_argv,
    build_env,
    check_instance_id,
    check_lock_free,
    check_param_name,
    find_build,
)
from sitl.px4_errors import (
    InstanceBusy,
    InstanceOutOfRange,
    Px4Exited,
    Px4LaunchError,
    Px4NotFound,
    Px4StartTimeout,
)

__all__ = [
    "GCS_PORT",
    "HomeSpec",
    "InstanceBusy",
    "InstanceOutOfRange",
    "Px4Exited",
    "Px4Fleet",
    "Px4LaunchError",
    "Px4NotFound",
    "Px4StartTimeout",
    "Px4Vehicle",
    "cli_main",
]

GCS_PORT = 14550
DEFAULT_SITE = Path(__file__).resolve().parent / "worlds" / "helsinki"


class HomeSpec(Protocol):
    """What Px4Fleet needs of a vehicle spec; `sitl.VehicleSpec` fits (so may any object alike).

    An optional `instance: int | None` attribute pins the PX4 instance id.
    """

    @property
    def kind(self) -> str: ...
    @property
    def home_lat_deg(self) -> float: ...
    @property
    def home_lon_deg(self) -> float: ...
    @property
    def home_alt_amsl_m(self) -> float: ...


@dataclass(frozen=True)
class Px4Vehicle:
    """A running PX4 instance, as the ground side needs to know it."""

    instance: int
    sysid: int
    kind: str
    home_lat_deg: float
    home_lon_deg: float
    home_alt_amsl_m: float
    workdir: Path
    log_path: Path
    pid: int
    api_port: int  # PX4 sends its API/offboard link here (127.0.0.1)
    gcs_port: int  # PX4 sends its GCS link here
    prearm_verified: bool  # False when the API port was taken and only the log was checked


@dataclass(frozen=True)
class _Planned:
    instance: int
    spec: HomeSpec


class Px4Fleet:
    """N PX4 SITL SIH instances as one async context manager.

    `params` become PX4_PARAM_<NAME> environment variables (set at boot). ULog logging is off unless
    `ulog=True` (it writes ~15 MB per few-minute flight). `extra_env` is added to each process's
    environment. `lock_dir` is where PX4 keeps its instance locks (always /tmp for real PX4).

    `api_port_base` is where instance i's API link is awaited (+ i) to check its readiness: PX4 sends
    it to 14540+i (px4-rc.mavlink); a px4 set up otherwise (e.g. a stand-in) sends elsewhere.
    """

    def __init__(
        self,
        px4_dir: str | os.PathLike[str] | None,
        specs: Sequence[HomeSpec],
        speed_factor: float = 1.0,
        run_dir: str | os.PathLike[str] | None = None,
        *,
        params: Mapping[str, float | int | str] | None = None,
        ulog: bool = False,
        start_timeout_s: float = 60.0,
        stop_grace_s: float = 5.0,
        extra_env: Mapping[str, str] | None = None,
        on_ready: Callable[[Px4Vehicle], None] | None = None,
        lock_dir: str | os.PathLike[str] = "/tmp",
        api_port_base: int = API_TARGET_PORT_BASE,
    ) -> None:
        if not specs:
            raise ValueError("Px4Fleet needs at least one vehicle spec")
        if not (math.isfinite(speed_factor) and speed_factor > 0.0):
            raise ValueError(f"speed_factor must be a positive number, got {speed_factor}")
        self._planned = _assign_instances(specs)
        for plan in self._planned:
            if plan.spec.kind not in AIRFRAMES:
                raise ValueError(f"unknown vehicle kind {plan.spec.kind!r}; use one of {sorted(AIRFRAMES)}")
        self._px4_dir = px4_dir
        self._speed_factor = speed_factor
        self._run_dir_arg = None if run_dir is None else Path(run_dir)
        self._params: dict[str, float | int | str] = {} if ulog else {"SDLOG_MODE": -1}
        self._params.update(params or {})
        for name in self._params:
            check_param_name(name)
        self._start_timeout_s = start_timeout_s
        self._stop_grace_s = stop_grace_s
        self._extra_env = dict(extra_env or {})
        self._on_ready = on_ready
        self._lock_dir = Path(lock_dir)
        self._api_port_base = api_port_base
        self._procs: list[Px4Process] = []
        self._vehicles: tuple[Px4Vehicle, ...] = ()
        self.run_dir: Path | None = None

    @property
    def vehicles(self) -> tuple[Px4Vehicle, ...]:
        """The running instances, in spec order (empty outside the `async with` block)."""
        return self._vehicles

    @property
    def speed_factor(self) -> float:
        return self._speed_factor

    async def __aenter__(self) -> Px4Fleet:
        build = find_build(self._px4_dir)
        for plan in self._planned:
            check_lock_free(plan.instance, self._lock_dir)
        self.run_dir = self._make_run_dir()
        self._procs = [self._make_process(build, plan, self.run_dir) for plan in self._planned]
        try:
            for proc in self._procs:
                await proc.start()
            vehicles: dict[int, Px4Vehicle] = {}
            async with asyncio.TaskGroup() as tg:
                for plan, proc in zip(self._planned, self._procs, strict=True):
                    tg.create_task(self._ready_one(plan, proc, vehicles), name=f"px4-{plan.instance}-start")
        except BaseException as exc:
            await self._stop_all()
            self._procs = []
            first = _first_launch_error(exc)
            if first is not None:
                raise first from exc
            raise
        self._vehicles = tuple(vehicles[plan.instance] for plan in self._planned)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop_all()
        self._procs = []
        self._vehicles = ()

    async def wait_any_exit(self) -> Px4Vehicle:
        """Return the first vehicle whose px4 process ends (it should not while the block runs)."""
        by_instance = {v.instance: v for v in self._vehicles}
        waits = {
            asyncio.create_task(p.wait_exit(), name=f"px4-{p.instance}-watch"): p.instance for p in self._procs
        }
        if not waits:
            raise RuntimeError("Px4Fleet is not running")
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return by_instance[waits[next(iter(done))]]

    def _make_run_dir(self) -> Path:
        if self._run_dir_arg is None:
            # kept after the run: the logs and PX4's parameters are worth reading when something failed
            return Path(tempfile.mkdtemp(prefix="fleetctl-px4-"))
        self._run_dir_arg.mkdir(parents=True, exist_ok=True)
        return self._run_dir_arg.resolve()

    def _api_port(self, instance: int) -> int:
        return self._api_port_base + instance

    def _make_process(self, build: Px4Build, plan: _Planned, run_dir: Path) -> Px4Process:
        workdir = run_dir / f"instance_{plan.instance}"
        extra_env = dict(self._extra_env)
        env = build_env(
            os.environ,
            kind=plan.spec.kind,
            home_lat_deg=plan.spec.home_lat_deg,
            home_lon_deg=plan.spec.home_lon_deg,
            home_alt_amsl_m=plan.spec.home_alt_amsl_m,
            speed_factor=self._speed_factor,
            params=self._params,
            extra_env=extra_env,
        )
        return Px4Process(
            instance=plan.instance,
            kind=plan.spec.kind,
            workdir=workdir,
            log_path=workdir / "px4.log",
            argv=build_argv(build, plan.instance, workdir),
            env=env,
            api_port=self._api_port(plan.instance),
        )

    async def _ready_one(self, plan: _Planned, proc: Px4Process, out: dict[int, Px4Vehicle]) -> None:
        await proc.wait_ready(self._start_timeout_s)
        assert proc.pid is not None
        vehicle = Px4Vehicle(
            instance=plan.instance,
            sysid=proc.sysid,
            kind=plan.spec.kind,
            home_lat_deg=plan.spec.home_lat_deg,
            home_lon_deg=plan.spec.home_lon_deg,
            home_alt_amsl_m=plan.spec.home_alt_amsl_m,
            workdir=proc.workdir,
            log_path=proc.log_path,
            pid=proc.pid,
            api_port=proc.api_port,
            gcs_port=GCS_PORT,
            prearm_verified=proc.prearm_verified,
        )
        out[plan.instance] = vehicle
        if self._on_ready is not None:
            self._on_ready(vehicle)

    async def _stop_all(self) -> None:
        if not self._procs:
            return
        async with asyncio.TaskGroup() as tg:
            for proc in self._procs:
                tg.create_task(proc.stop(self._stop_grace_s), name=f"px4-{proc.instance}-stop")


def _assign_instances(specs: Sequence[HomeSpec]) -> list[_Planned]:
    """Pinned instance ids (spec.instance) first; the others get the lowest free ids, in order."""
    pinned: list[int | None] = [getattr(spec, "instance", None) for spec in specs]
    taken: set[int] = set()
    for inst in pinned:
        if inst is None:
            continue
        check_instance_id(inst)
        if inst in taken:
            raise ValueError(f"PX4 instance id {inst} is given to two vehicles")
        taken.add(inst)
    planned: list[_Planned] = []
    next_free = 0
    for spec, inst in zip(specs, pinned, strict=True):
        if inst is None:
            while next_free in taken:
                next_free += 1
            inst = next_free
            taken.add(inst)
        check_instance_id(inst)
        planned.append(_Planned(inst, spec))
    return planned


def _first_launch_error(exc: BaseException) -> Px4LaunchError | None:
    """The first Px4LaunchError inside a TaskGroup's exception group, noting the others."""
    if not isinstance(exc, BaseExceptionGroup):
        return None
    found = [e for e in _leaves(exc) if isinstance(e, Px4LaunchError)]
    if not found:
        return None
    first = found[0]
    for other in found[1:]:
        first.add_note(f"also: {other}")
    return first


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


# --- command line -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CliSpec:
    """A vehicle spec for the CLI (duck-types `sitl.VehicleSpec`)."""

    kind: str
    home_lat_deg: float
    home_lon_deg: float
    home_alt_amsl_m: float
    instance: int | None = None


def specs_from_site(site: Any, quads: int, rovers: int, spacing_m: float = 4.0) -> list[CliSpec]:
    """Homes on the site's depots: vehicles go round-robin over the depots, each on its own pad.

    With more vehicles than pads at a depot, the extra ones stand `spacing_m` apart east of the depot.
    """
    from planner.geo import offset_wgs84

    depots = list(site.depots.values())
    if not depots:
        raise ValueError(f"site {getattr(site, 'name', '?')!r} has no depots to put vehicles on")
    kinds = ["quad"] * quads + ["rover"] * rovers
    used: dict[int, int] = {}
    specs: list[CliSpec] = []
    for k, kind in enumerate(kinds):
        d = k % len(depots)
        depot = depots[d]
        slot = used.get(d, 0)
        used[d] = slot + 1
        pads = tuple(getattr(depot, "pads", ()))
        alt = float(depot.position.alt_amsl_m)
        if slot < len(pads):
            lat, lon = float(pads[slot].position.lat_deg), float(pads[slot].position.lon_deg)
        else:
            extra = slot - len(pads) + 1
            lat, lon = offset_wgs84(depot.position.lat_deg, depot.position.lon_deg, 0.0, extra * spacing_m)
        specs.append(CliSpec(kind, lat, lon, alt))
    return specs


def _parse_home(text: str) -> tuple[float, float, float]:
    try:
        lat, lon, alt = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--home wants LAT,LON,ALT_AMSL, got {text!r}") from exc
    return lat, lon, alt


def _parse_param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--param wants NAME=VALUE, got {text!r}")
    return name.upper(), value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sitl px4",
        description="Run N real PX4 SITL vehicles (SIH simulator) until Ctrl-C. "
        "Instance i is MAVLink system i+1: GCS link to UDP 14550, API link to 14540+i.",
    )
    p.add_argument("--quads", type=int, default=1, help="number of quadcopters (airframe 10040)")
    p.add_argument("--rovers", type=int, default=0, help="number of Ackermann rovers (airframe 10045)")
    p.add_argument("--site", type=Path, default=DEFAULT_SITE, help="site folder: homes on its depots")
    p.add_argument("--home", type=_parse_home, help="LAT,LON,ALT_AMSL for every vehicle (instead of --site)")
    p.add_argument("--px4-dir", help="PX4-Autopilot checkout or its SITL build folder (default: $PX4_DIR)")
    p.add_argument("--speed", type=float, default=1.0, help="PX4_SIM_SPEED_FACTOR (keep N x speed <= ~12)")
    p.add_argument("--run-dir", type=Path, help="working directories and logs (default: a new temp dir)")
    p.add_argument("--param", type=_parse_param, action="append", default=[], help="PX4 parameter NAME=VALUE")
    p.add_argument("--ulog", action="store_true", help="keep PX4's ULog logging on (SDLOG_MODE default)")
    p.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for readiness")
    p.add_argument("--api-port-base", type=int, default=API_TARGET_PORT_BASE,
                   help="instance i's API link arrives at this port + i (PX4: %(default)s)")
    return p


def _describe(v: Px4Vehicle) -> str:
    checked = "pre-arm ok" if v.prearm_verified else "started (API port busy: link not checked)"
    return (
        f"ready  instance {v.instance}  sysid {v.sysid}  {v.kind:<5}  "
        f"home {v.home_lat_deg:.7f},{v.home_lon_deg:.7f},{v.home_alt_amsl_m:.1f}  "
        f"API udp 127.0.0.1:{v.api_port}  GCS udp 127.0.0.1:{v.gcs_port}  pid {v.pid}  {checked}  "
        f"log {v.log_path}"
    )


async def _run(args: argparse.Namespace, specs: Sequence[CliSpec]) -> int:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    # SIGTERM stops as cleanly as Ctrl-C does
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    fleet = Px4Fleet(
        args.px4_dir,
        specs,
        speed_factor=args.speed,
        run_dir=args.run_dir,
        params=dict(args.param),
        ulog=args.ulog,
        start_timeout_s=args.start_timeout,
        on_ready=lambda v: print(_describe(v), flush=True),
        api_port_base=args.api_port_base,
    )
    async with fleet:
        print(f"all {len(fleet.vehicles)} PX4 instances ready (run dir {fleet.run_dir}); Ctrl-C stops them",
              flush=True)
        gone = await fleet.wait_any_exit()
        print(f"px4 instance {gone.instance} exited unexpectedly; stopping the others (see {gone.log_path})",
              file=sys.stderr, flush=True)
        return 1


def cli_main(argv: list[str]) -> int:
    """`python -m sitl px4 ...`: start the vehicles, print one line per ready instance, run until Ctrl-C."""
    if argv and argv[0] == "px4":
        argv = argv[1:]
    args = _parser().parse_args(argv)
    if args.quads < 0 or args.rovers < 0 or args.quads + args.rovers == 0:
        print("error: ask for at least one vehicle (--quads/--rovers)", file=sys.stderr)
        return 2
    if args.quads + args.rovers > MAX_INSTANCE + 1:
        print(f"error: at most {MAX_INSTANCE + 1} PX4 instances per host (PX4's API port scheme)",
              file=sys.stderr)
        return 2
    try:
        if args.home is not None:
            lat, lon, alt = args.home
            specs = [CliSpec("quad", lat, lon, alt)] * args.quads + [CliSpec("rover", lat, lon, alt)] * args.rovers
        else:
            from planner.site import load_site

            specs = specs_from_site(load_site(args.site), args.quads, args.rovers)
        return asyncio.run(_run(args, specs))
    except (KeyboardInterrupt, asyncio.CancelledError):
        # Ctrl-C (or SIGTERM) is the normal way to stop: the fleet has already shut down cleanly
        print("stopped", file=sys.stderr)
        return 0
    except (Px4LaunchError, PlanningError, ValueError) as exc:
        # PlanningError: planner.site could not load the site folder (SiteError names file and feature)
        print(f"error: {exc}", file=sys.stderr)
        return 1
