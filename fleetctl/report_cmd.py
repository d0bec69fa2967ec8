"""`fleetctl report RUN_DIR`: a finished demo or scenario run's KPIs, report and map, redrawn from its
store, events and tracks (fleetctl.demo.rebuild); a scenario run's expectations are checked again."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "report", help="redraw the KPIs, report and map of a finished demo or scenario run",
        description="Reads a finished run's folder (fleet.db, site/, tracks.csv, report.json, as `fleetctl demo` and "
                    "`fleetctl scenario run` leave it), recomputes the KPIs from the store and the event log, "
                    "redraws the map and rewrites report.json (and, for a scenario run, re-checks its expectations "
                    "and rewrites junit.xml). Exits 1 if a scenario's expectation now fails.")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, help="write the files here instead of RUN_DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console) -> int:
    return asyncio.run(_report(args.run_dir, args.out or args.run_dir, console))


async def _report(run_dir: Path, out: Path, console: Console) -> int:
    from fleetctl.demo import report
    from fleetctl.demo.rebuild import read_run, rebuild
    from fleetctl.scenario.checks import check_all
    from fleetctl.scenario.junit import write_junit
    from fleetctl.scenario.model import load_scenario
    from fleetctl.scenario.run import (
        JUNIT_FILE,
        SCENARIO_FILE,
        facts_of_folder,
        junit_properties,
        scenario_section,
        show_checks,
    )

    run = await read_run(run_dir)
    rebuilt = await asyncio.to_thread(rebuild, run, out)
    data = rebuilt.data
    code = 0
    if (run_dir / SCENARIO_FILE).is_file() and "scenario" in run.old:
        scenario = await asyncio.to_thread(load_scenario, run_dir / SCENARIO_FILE)
        facts = facts_of_folder(run, data["kpis"])
        checks = check_all(scenario.expect, facts)
        section = scenario_section(scenario, checks, facts.actions)
        section["file"] = run.old["scenario"].get("file", section["file"])
        data["scenario"] = section
        report.write_json(data, rebuilt.report_path)
        junit = write_junit(out / JUNIT_FILE, scenario.name, checks, properties=junit_properties(data))
        show_checks(console, scenario.name, checks)
        console.print(f"junit:  {junit}", soft_wrap=True, highlight=False)
        code = 0 if section["passed"] else 1
    report.show(console, data)
    console.print(f"report: {rebuilt.report_path}", soft_wrap=True, highlight=False)
    console.print(f"map:    {rebuilt.map_path}", soft_wrap=True, highlight=False)
    return code
