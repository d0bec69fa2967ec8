"""`fleetctl scenario run FILE.toml`: a scenario end to end, checked, with a JUnit file (fleetctl.scenario)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console

from fleetctl.demo_cmd import _logging


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "scenario", help="run a SITL test scenario (site, fleet, orders, faults, expectations) and check it",
        description="Scenario runs: the whole stack (simulator or PX4, broker, store, the real service) driven by a "
                    "scenario file's orders and timed faults and operator actions, then every expectation checked. "
                    "Writes the KPI report, the map and a JUnit XML file; exits 0 only if every expectation holds.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    r: argparse.ArgumentParser = verbs.add_parser("run", help="run one scenario file",
                                                  description="Run one scenario file (see scenarios/README.md).")
    r.add_argument("file", type=Path, metavar="FILE.toml")
    r.add_argument("--px4-dir", type=Path, help="fly real PX4 SITL (SIH) from this PX4 build; faults PX4 cannot "
                                                "take are skipped (a skipped JUnit test case says why)")
    r.add_argument("--speed", type=float, help="simulated seconds per wall second (default: the scenario's)")
    r.add_argument("--out", type=Path, help="output folder (default ./scenario-run-<name>-<timestamp>/)")
    r.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    r.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    r.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    from fleetctl.errors import ConfigError
    from fleetctl.scenario import load_scenario, run_scenario
    from sitl.errors import SimError

    scenario = load_scenario(args.file)
    if args.speed is not None and not args.speed > 0:
        raise ConfigError(f"--speed must be a positive number, not {args.speed}")
    if args.px4_dir is not None and not args.px4_dir.exists():
        raise ConfigError(f"--px4-dir {args.px4_dir} does not exist")
    _logging(console, args.verbose, live=console.is_terminal and not args.plain)
    try:
        result = asyncio.run(run_scenario(scenario, px4_dir=args.px4_dir, speed=args.speed, out=args.out,
                                          console=console, handle_sigint=True))
    except SimError as e:  # the simulator or PX4 could not start (ports taken, no PX4 build, ...)
        Console(stderr=True).print(f"[bold red]error:[/bold red] {e}", soft_wrap=True)
        return 2
    return result.exit_code
