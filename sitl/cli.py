"""`python -m sitl`: run the built-in simulator fleet, or launch real PX4 SITL (`px4` subcommand).

    python -m sitl run --quads 6 --rovers 4 --site sitl/worlds/helsinki --speed 10
    python -m sitl run --quads 1 --fault "battery_drop:0:at=60:percent=50" --fault "link_loss:0:at=90:duration=15"
    python -m sitl px4 --help

`run` prints one line per vehicle, then runs until Ctrl-C (or `--duration` simulated seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from planner.vehicle_model import VehicleModel
from sitl.errors import BadFaultSpec, SimError
from sitl.fleet import SimFleet
from sitl.modes import mode_name
from sitl.vehicle import SimPorts, SimVehicle, VehicleSpec

DEFAULT_HOME = (47.397742, 8.545594, 488.0)
FAULT_KINDS = ("link_loss", "packet_loss", "battery_drop", "gps_loss", "gripper_jam", "wind_gust", "refuse_arm")
FAULT_HELP = """\
fault injection, repeatable: KIND:INSTANCE[:key=value...], applied at simulated time `at` (s, default 0).
  link_loss:I:at=T:duration=S       both links of instance I go silent for S sim seconds (default 10)
  packet_loss:I:at=T:rate=R         drop each packet with probability R (0..1; 0 turns it off)
  battery_drop:I:at=T:percent=P     battery loses P percentage points (default 50)
  gps_loss:I:at=T:duration=S        no GPS fix for S seconds (arming refused "GPS fix too low")
  gripper_jam:I:at=T:on=1           DO_GRIPPER fails, payload stays on board (on=0 clears it)
  wind_gust:I:at=T:speed=V:from=DEG:duration=S   gust of V m/s from DEG pushes a flying quad
  refuse_arm:I:at=T:reason=TEXT     arming TEMPORARILY_REJECTED with "Arming denied: TEXT" (no reason lifts it)
example: --fault "link_loss:3:at=60:duration=10"
"""


@dataclass(frozen=True)
class FaultPlan:
    kind: str
    instance: int
    at_s: float
    args: dict[str, str]


def parse_fault(text: str) -> FaultPlan:
    parts = text.split(":")
    if len(parts) < 2:
        raise BadFaultSpec(text, "expected KIND:INSTANCE[:key=value...]")
    kind = parts[0].strip()
    if kind not in FAULT_KINDS:
        raise BadFaultSpec(text, f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
    try:
        instance = int(parts[1])
    except ValueError as exc:
        raise BadFaultSpec(text, f"instance {parts[1]!r} is not an integer") from exc
    args: dict[str, str] = {}
    for part in parts[2:]:
        key, sep, value = part.partition("=")
        if not sep:
            raise BadFaultSpec(text, f"{part!r} is not key=value")
        args[key.strip()] = value.strip()
    try:
        at_s = float(args.pop("at", "0"))
        plan = FaultPlan(kind, instance, at_s, args)
        _check_numbers(plan)
    except ValueError as exc:
        raise BadFaultSpec(text, str(exc)) from exc
    return plan


def _check_numbers(plan: FaultPlan) -> None:
    for key in ("duration", "rate", "percent", "speed", "from", "on"):
        if key in plan.args:
            float(plan.args[key])


def apply_fault(vehicle: SimVehicle, plan: FaultPlan) -> None:
    f = vehicle.faults
    a = plan.args
    if plan.kind == "link_loss":
        f.link_loss(float(a.get("duration", "10")))
    elif plan.kind == "packet_loss":
        f.packet_loss(float(a.get("rate", "0.2")))
    elif plan.kind == "battery_drop":
        f.battery_drop(float(a.get("percent", "50")))
    elif plan.kind == "gps_loss":
        f.gps_loss(float(a.get("duration", "30")))
    elif plan.kind == "gripper_jam":
        f.gripper_jam(float(a.get("on", "1")) != 0)
    elif plan.kind == "wind_gust":
        f.wind_gust(float(a.get("speed", "8")), float(a.get("from", "270")), float(a.get("duration", "20")))
    elif plan.kind == "refuse_arm":
        f.refuse_arm(a.get("reason") or None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sitl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run N simulated PX4 vehicles (quads and rovers) in this process",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=FAULT_HELP)
    run.add_argument("--quads", type=int, default=None,
                     help="number of multicopters (default: the site's fleet, else 1)")
    run.add_argument("--rovers", type=int, default=None, help="number of Ackermann rovers (default: site's fleet, else 0)")
    run.add_argument("--site", type=Path, default=None,
                     help="site folder (e.g. sitl/worlds/helsinki): vehicles start on its depots' pads and "
                          "use its vehicle models; without depots they start at the site origin")
    run.add_argument("--home", default=None,
                     help="LAT,LON,ALT_AMSL of the first vehicle when no site is given "
                          f"(default {DEFAULT_HOME[0]},{DEFAULT_HOME[1]},{DEFAULT_HOME[2]}); others 5 m apart")
    run.add_argument("--speed", type=float, default=1.0,
                     help="speed factor: simulated seconds per wall second for physics, timeouts, "
                          "time_boot_ms and stream rates (default 1); a host too slow for it runs "
                          "slower and warns")
    run.add_argument("--stream-profile", choices=("px4", "gcs"), default="px4",
                     help="px4: PX4's full default stream rates (~400 msg/s per vehicle on the API link); "
                          "gcs: only what a ground station reads, at PX4's rates (for big fleets)")
    run.add_argument("--target-host", default="127.0.0.1", help="host the vehicles send to (default 127.0.0.1)")
    run.add_argument("--bind-host", default="0.0.0.0", help="address the vehicles listen on (default 0.0.0.0)")
    run.add_argument("--gcs-port", type=int, default=14550,
                     help="GCS link target port, shared by all vehicles (default 14550)")
    run.add_argument("--api-target-base", type=int, default=14540,
                     help="API link of instance i sends to this + i (default 14540)")
    run.add_argument("--gcs-listen-base", type=int, default=18570,
                     help="GCS link of instance i listens on this + i (default 18570)")
    run.add_argument("--api-listen-base", type=int, default=14580,
                     help="API link of instance i listens on this + i (default 14580)")
    run.add_argument("--dl-loss-timeout", type=float, default=10.0,
                     help="data-link-loss failsafe (RTL) after this many sim seconds without a GCS heartbeat "
                          "(PX4's COM_DL_LOSS_T, default 10; 0 disables). A GCS heartbeating at 1 Hz wall "
                          "needs more than the speed factor, as with real PX4 SITL")
    run.add_argument("--fault", action="append", default=[], metavar="SPEC", help="inject a fault (see below)")
    run.add_argument("--duration", type=float, default=None,
                     help="stop after this many simulated seconds (default: run until Ctrl-C)")
    run.add_argument("--status-every", type=float, default=0.0,
                     help="print one status line per vehicle every N wall seconds (default 0: never)")
    px4 = sub.add_parser("px4", help="launch real PX4 SITL (SIH) instances; see `python -m sitl px4 --help`",
                         add_help=False)
    px4.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def vehicle_specs(args: argparse.Namespace) -> list[VehicleSpec]:
    site = None
    if args.site is not None:
        from planner.site import load_site

        site = load_site(args.site)
    n_quads, n_rovers = args.quads, args.rovers
    models: list[VehicleModel | None] = []
    kinds: list[str] = []
    if site is not None and n_quads is None and n_rovers is None and site.fleet:
        for entry in site.fleet:
            model = site.vehicle_models.get(entry.model)
            kinds.append("quad" if model is None or model.kind == "drone" else "rover")
            models.append(model)
    else:
        kinds = ["quad"] * (1 if n_quads is None else n_quads) + ["rover"] * (n_rovers or 0)
        models = [None] * len(kinds)
        if site is not None:
            drone = next((m for m in site.vehicle_models.values() if m.kind == "drone"), None)
            robot = next((m for m in site.vehicle_models.values() if m.kind == "robot"), None)
            models = [drone if k == "quad" else robot for k in kinds]
    homes = _homes(args, site, len(kinds))
    if site is not None and n_quads is None and n_rovers is None and site.fleet:
        from sitl.site_fleet import fleet_specs

        return fleet_specs(site)
    return [VehicleSpec(k, *home, instance=i, model=m)  # type: ignore[arg-type]
            for i, (k, home, m) in enumerate(zip(kinds, homes, models, strict=True))]


def _homes(args: argparse.Namespace, site: object | None, n: int) -> list[tuple[float, float, float]]:
    from planner.geo import offset_wgs84

    spots: list[tuple[float, float, float]] = []
    if site is not None:
        depots = list(getattr(site, "depots", {}).values())
        for depot in depots:
            for pad in depot.pads:
                spots.append((pad.position.lat_deg, pad.position.lon_deg, pad.position.alt_amsl_m))
            if not depot.pads:
                spots.append((depot.position.lat_deg, depot.position.lon_deg, depot.position.alt_amsl_m))
        if not spots:
            origin = site.origin  # type: ignore[attr-defined]
            spots.append((origin.lat_deg, origin.lon_deg, origin.alt_amsl_m))
    else:
        home = DEFAULT_HOME
        if args.home:
            lat, lon, alt = (float(x) for x in args.home.split(","))
            home = (lat, lon, alt)
        spots.append(home)
    out = []
    for i in range(n):
        base = spots[i % len(spots)]
        ring = i // len(spots)  # more vehicles than pads: stand 5 m apart, eastwards
        if ring:
            lat, lon = offset_wgs84(base[0], base[1], 0.0, 5.0 * ring)
            out.append((lat, lon, base[2]))
        else:
            out.append(base)
    return out


async def run_fleet(args: argparse.Namespace, specs: Sequence[VehicleSpec], faults: Sequence[FaultPlan]) -> None:
    ports = SimPorts(target_host=args.target_host, gcs_target_port=args.gcs_port,
                     api_target_base=args.api_target_base, gcs_listen_base=args.gcs_listen_base,
                     api_listen_base=args.api_listen_base, bind_host=args.bind_host)
    dl_loss = args.dl_loss_timeout if args.dl_loss_timeout > 0 else None
    async with SimFleet(specs, ports=ports, speed_factor=args.speed, stream_profile=args.stream_profile,
                        datalink_timeout_s=dl_loss) as fleet:
        for v in fleet.vehicles:
            s = v.snapshot()
            print(f"sysid {v.sysid:3d}  {v.kind:5s}  instance {v.instance:3d}  home {s.home_lat_deg:.7f},"
                  f"{s.home_lon_deg:.7f} {s.home_alt_amsl_m:.1f} m  GCS :{ports.gcs_listen_base + v.instance}"
                  f"->{ports.target_host}:{ports.gcs_target_port}  API :{ports.api_listen_base + v.instance}"
                  f"->{ports.target_host}:{ports.api_target_base + v.instance}", flush=True)
        print(f"{len(fleet.vehicles)} vehicles at speed x{args.speed:g}, streams '{args.stream_profile}'; "
              "Ctrl-C stops", flush=True)
        pending = sorted(faults, key=lambda f: f.at_s)
        by_instance = {v.instance: v for v in fleet.vehicles}
        last_status = 0.0
        loop = asyncio.get_running_loop()
        while True:
            now = fleet.now_s()
            while pending and pending[0].at_s <= now:
                plan = pending.pop(0)
                vehicle = by_instance.get(plan.instance)
                if vehicle is None:
                    print(f"fault {plan.kind}: no vehicle with instance {plan.instance}", file=sys.stderr)
                    continue
                apply_fault(vehicle, plan)
                print(f"t={now:7.1f} s  fault {plan.kind} on instance {plan.instance} {plan.args}", flush=True)
            if args.duration is not None and now >= args.duration:
                return
            if args.status_every > 0 and loop.time() - last_status >= args.status_every:
                last_status = loop.time()
                for v in fleet.vehicles:
                    s = v.snapshot()
                    print(f"t={now:7.1f} s  sysid {v.sysid:3d} {mode_name(s.custom_mode):13s} "
                          f"{'ARMED' if s.armed else 'disarmed':8s} alt {s.rel_alt_m:6.1f} m "
                          f"gs {s.groundspeed_m_s:4.1f} m/s  bat {s.battery_percent:5.1f} %", flush=True)
            await asyncio.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "px4":
        from sitl.px4 import cli_main

        return int(cli_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        faults = [parse_fault(text) for text in args.fault]
        specs = vehicle_specs(args)
        if not specs:
            print("no vehicles to simulate (--quads 0 --rovers 0)", file=sys.stderr)
            return 2
        if not (args.speed > 0 and math.isfinite(args.speed)):
            print("--speed must be a positive number", file=sys.stderr)
            return 2
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_fleet(args, specs, faults))
    except SimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from planner.errors import PlanningError

        if isinstance(exc, PlanningError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    return 0
