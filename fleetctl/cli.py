"""The `fleetctl` command line: one subcommand per job, each in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from fleetctl import __version__, demo_cmd, plan_cmd, report_cmd, scenario_cmd, serve_cmd
from fleetctl.console import cli as console_cmd
from fleetctl.errors import FleetError
from planner.errors import PlanningError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleetctl",
        description="Ground control for mixed fleets of delivery drones and sidewalk robots.",
    )
    parser.add_argument("--version", action="version", version=f"fleetctl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    plan_cmd.add_parser(sub)
    serve_cmd.add_parser(sub)
    demo_cmd.add_parser(sub)
    scenario_cmd.add_parser(sub)
    report_cmd.add_parser(sub)
    console_cmd.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    err = Console(stderr=True)
    try:
        code: int = args.func(args, console)
    except (PlanningError, FleetError) as exc:
        # One line, whatever the width; escaped, as messages quote [brackets] rich would take for markup.
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
