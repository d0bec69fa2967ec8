"""The built-in simulator for a demo, in a process of its own: a site's fleet on its depots, as
`sitl.SimFleet` vehicles speaking MAVLink on the given ports.

A Python process runs on one core at a time; the simulator of a whole fleet at 20x needs most of one,
and so does the service: apart, they use both cores of a small machine. It is the vehicle side of the
link only, as PX4 SITL would be.

    python -m fleetctl.demo.simproc SITE_DIR --speed 20 --gcs-port P --api-target-base A \\
        --gcs-listen-base G --api-listen-base L [--step 0.02]

Prints one JSON line {"ready": N} once every vehicle's sockets are open, then one line of the
simulator's stats every second ({"stats": {...}}); ends when its stdin closes (its parent ended) or on
SIGTERM.

Its stdin is also a control channel for fault injection (scenario runs): one JSON line per fault,
{"id": 7, "sysid": 2, "fault": "link_loss", "args": {"duration_s": 60}}, calls
`sitl.faults.Faults.<fault>(**args)` on that vehicle and is answered on stdout with
{"fault_ack": 7, "ok": true} or {"fault_ack": 7, "ok": false, "error": "..."}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

STATS_EVERY_S = 1.0
#: The methods of sitl.faults.Faults the control channel may call.
FAULTS = frozenset({"link_loss", "packet_loss", "battery_drop", "gps_loss", "gripper_jam", "wind_gust",
                    "refuse_arm"})


def _args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m fleetctl.demo.simproc")
    p.add_argument("site", type=Path)
    p.add_argument("--speed", type=float, required=True)
    p.add_argument("--step", type=float, default=None, help="simulation step (s); default: the simulator's")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--gcs-port", type=int, required=True)
    p.add_argument("--api-target-base", type=int, required=True)
    p.add_argument("--gcs-listen-base", type=int, required=True)
    p.add_argument("--api-listen-base", type=int, required=True)
    return p.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    from planner.site import load_site
    from sitl import SimFleet, SimPorts
    from sitl.site_fleet import fleet_specs

    site = load_site(args.site)
    specs = fleet_specs(site)
    ports = SimPorts(target_host=args.host, gcs_target_port=args.gcs_port, api_target_base=args.api_target_base,
                     gcs_listen_base=args.gcs_listen_base, api_listen_base=args.api_listen_base,
                     bind_host=args.host)
    step = {} if args.step is None else {"step_s": args.step}
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, main.cancel)
    # PX4's default NAV_DLL_ACT is 0: a vehicle flies its mission on while no ground station talks;
    # the "gcs" stream profile is what a ground station reads, at PX4's rates (cheap for a fleet).
    async with SimFleet(specs, ports=ports, speed_factor=args.speed, stream_profile="gcs",
                        datalink_timeout_s=None, **step) as fleet:
        _say({"ready": len(fleet.vehicles)})
        parent = loop.create_future()  # done when stdin closes: the parent is gone
        by_sysid = {v.sysid: v for v in fleet.vehicles}

        def inject(line: bytes) -> None:
            _say(_inject(by_sysid, line))

        threading.Thread(target=_read_control, args=(loop, parent, inject), name="parent-watch",
                         daemon=True).start()
        while not parent.done():
            await asyncio.wait({parent}, timeout=STATS_EVERY_S)
            s = fleet.stats()
            _say({"stats": {"sim_time_s": round(s.sim_time_s, 1), "wall_time_s": round(s.wall_time_s, 1),
                            "cpu_time_s": round(s.cpu_time_s, 1), "achieved_speed": round(s.achieved_speed, 2),
                            "behind_s": round(s.behind_s, 1), "lag_events": s.lag_events}})


def _inject(vehicles: Mapping[int, Any], line: bytes) -> dict[str, object]:
    """Apply one fault line (see the module docstring); the answer to print."""
    ident: object = None
    try:
        message = json.loads(line)
        ident = message.get("id")
        fault = message["fault"]
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        vehicle = vehicles.get(int(message["sysid"]))
        if vehicle is None:
            raise ValueError(f"no vehicle with system id {message['sysid']}")
        getattr(vehicle.faults, fault)(**message.get("args", {}))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        return {"fault_ack": ident, "ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"fault_ack": ident, "ok": True}


def _read_control(loop: asyncio.AbstractEventLoop, done: asyncio.Future[None],
                  inject: Callable[[bytes], None]) -> None:
    """Fault lines from stdin, each handed to the loop (the vehicles live there), until it closes."""
    with contextlib.suppress(OSError, ValueError):
        for line in sys.stdin.buffer:
            if line.strip():
                with contextlib.suppress(RuntimeError):  # the loop has closed already
                    loop.call_soon_threadsafe(inject, line)

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    with contextlib.suppress(RuntimeError):  # the loop has closed already
        loop.call_soon_threadsafe(finish)


def _say(message: dict[str, object]) -> None:
    print(json.dumps(message), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends us
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError, BrokenPipeError):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
