"""One scenario run, start to end: a demo run (fleetctl.demo.run) with the scenario's site, fleet,
orders and speed, its timeline beside the order stream, then every expectation checked against what
the run left (the store, the events, the tracks). The output folder gets the demo's files (report.json
with a "scenario" section, map.png, tracks.csv, fleet.db, site/), a copy of the scenario (scenario.toml,
and its orders file) and junit.xml. The exit code is 0 only if every check passed (skipped ones do not
count against it), 1 if one failed, 130 if the run was stopped.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fleetctl.demo import report
from fleetctl.demo.added_zones import zones_from_events
from fleetctl.demo.fleet import choose_vehicles, site_with_fleet
from fleetctl.demo.options import DemoOptions
from fleetctl.demo.orders import PlannedOrder, order_stream
from fleetctl.demo.rebuild import RunFolder, read_events
from fleetctl.demo.run import RunHooks, run_demo
from fleetctl.errors import ScenarioError
from fleetctl.fleet_view import fleet_members
from fleetctl.scenario.checks import Check, Facts, check_all
from fleetctl.scenario.junit import write_junit
from fleetctl.scenario.model import AddZone, EnterPin, OrderItem, Scenario, load_scenario
from fleetctl.scenario.timeline import Outcome, Timeline, point_of
from fleetctl.store import Store
from fleetctl.store.records import EventRecord, OrderRecord
from fleetctl.tracks import Track
from planner.errors import PlanningError
from planner.site import Site, load_site
from sitl.worlds import bundled_site_path

JUNIT_FILE = "junit.xml"
SCENARIO_FILE = "scenario.toml"
#: The order stream of explicit orders lasts until just after the last order or action.
STREAM_TAIL_S = 1.0
EXIT_FAILED = 1
EXIT_STOPPED = 130


@dataclass
class ScenarioResult:
    exit_code: int
    out_dir: Path
    checks: list[Check]
    junit_path: Path
    report_path: Path
    data: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)


def site_dir(scenario: Scenario) -> Path:
    """The scenario's site: a folder (relative to the scenario file) or a bundled site's name."""
    local = (scenario.source.parent / scenario.site)
    if (local / "site.toml").is_file():
        return local
    try:
        return bundled_site_path(scenario.site)
    except PlanningError as e:
        raise ScenarioError(str(scenario.source), "site", f"neither a site folder nor a bundled site: {e}") from None


async def run_scenario_file(path: Path, **kwargs: Any) -> ScenarioResult:
    return await run_scenario(await asyncio.to_thread(load_scenario, path), **kwargs)


async def run_scenario(scenario: Scenario, *, px4_dir: Path | None = None, speed: float | None = None,
                       out: Path | None = None, console: Console | None = None,
                       handle_sigint: bool = False) -> ScenarioResult:
    """Run `scenario` (see the module docstring). ScenarioError before anything starts when it
    names what the site does not have, or needs PX4 and got no --px4-dir."""
    console = console or Console()
    wall0 = time.monotonic()
    where = str(scenario.source)
    if scenario.backend == "px4" and px4_dir is None:
        raise ScenarioError(where, "backend", 'backend = "px4" needs --px4-dir')
    folder = site_dir(scenario)
    source = await asyncio.to_thread(load_site, folder)
    vehicle_ids = choose_vehicles(source, scenario.fleet.quads, scenario.fleet.robots, scenario.fleet.vehicles)
    items = scenario.order_items()
    check_names(scenario, items, source, vehicle_ids)
    orders = await asyncio.to_thread(_orders, scenario, items, folder, vehicle_ids)
    last_s = max([o.at_s for o in orders] + [a.at_s for a in scenario.actions], default=0.0)
    hours = (last_s + STREAM_TAIL_S) / 3600.0
    if scenario.orders.synthetic:
        assert scenario.orders.hours is not None
        hours = max(hours, scenario.orders.hours)
    options = DemoOptions(
        speed=speed or scenario.speed, hours=hours, orders_per_hour=len(orders) / hours, seed=scenario.orders.seed,
        vehicles=tuple(vehicle_ids), out=out or Path(f"scenario-run-{scenario.name}-{datetime.now():%Y%m%d-%H%M%S}"),
        px4_dir=px4_dir, site=folder, drain_min=scenario.drain_min)
    timeline = Timeline(scenario.actions, len(orders), pins={o.id: o.handoff_pin for o in items if o.handoff_pin})
    hooks = RunHooks(orders=orders, during=timeline.run, title=f"fleetctl scenario {scenario.name}",
                     contingencies=scenario.contingencies)
    result = await run_demo(options, console, handle_sigint=handle_sigint, hooks=hooks)
    assert result.store is not None
    assert result.site is not None
    assert result.recording is not None
    async with Store.open(result.store.url, schema=result.store.schema) as store:
        records = {o.order_id: o for o in await store.list_orders(limit=1_000_000)}
        events = await read_events(store)
    facts = facts_of(result.site, records, events, list(result.recording.tracks.tracks.values()),
                     result.data["kpis"], timeline.outcomes)
    checks = check_all(scenario.expect, facts)
    stopped = result.exit_code != 0
    if stopped:
        checks.append(Check("run completed", "failed", "the run was stopped before its end"))
    await asyncio.to_thread(_keep_scenario, scenario, result.out_dir)
    data = result.data
    data["scenario"] = scenario_section(scenario, checks, timeline.outcomes)
    report.write_json(data, result.report_path)
    junit = write_junit(result.out_dir / JUNIT_FILE, scenario.name, checks, time_s=time.monotonic() - wall0,
                        properties=junit_properties(data))
    show_checks(console, scenario.name, checks)
    console.print(f"junit:  {junit}", soft_wrap=True, highlight=False)
    code = EXIT_STOPPED if stopped else 0 if all(c.ok for c in checks) else EXIT_FAILED
    return ScenarioResult(code, result.out_dir, checks, junit, result.report_path, data)


def check_names(scenario: Scenario, items: Sequence[OrderItem], site: Site, vehicle_ids: Sequence[str]) -> None:
    """ScenarioError for a drop point, vehicle or order the scenario names and the run will not have."""
    where = str(scenario.source)
    for i, item in enumerate(items):
        if item.dropoff not in site.drop_points:
            raise ScenarioError(where, f"orders.items.{i}.dropoff", f"site {site.name!r} has no drop point "
                                                                    f"{item.dropoff!r}")
    order_ids = {o.id for o in items}
    for i, action in enumerate(scenario.actions):
        for key in ("vehicle",):
            vid = getattr(action, key, None)
            if vid is not None and vid not in vehicle_ids:
                raise ScenarioError(where, f"actions.{i}.{key}",
                                    f"{vid!r} is not in this run's fleet ({', '.join(vehicle_ids)})")
        for key in ("carrying", "order"):
            oid = getattr(action, key, None)
            if oid is not None and order_ids and oid not in order_ids:
                raise ScenarioError(where, f"actions.{i}.{key}", f"no order {oid!r} in the scenario")
        if isinstance(action, EnterPin) and action.pin is None and not any(
                o.id == action.order and o.handoff_pin for o in items):
            raise ScenarioError(where, f"actions.{i}.pin", f"order {action.order!r} has no handoff_pin to enter: "
                                                          "give the pin")
        if isinstance(action, AddZone) and action.circle is not None:
            try:
                point_of(action.circle, site)
            except ValueError as e:
                raise ScenarioError(where, f"actions.{i}.circle", str(e)) from None
    for key, mapping in (("expect.orders", scenario.expect.orders),
                         ("expect.orders_went_through", scenario.expect.orders_went_through)):
        for oid in mapping:
            if order_ids and oid not in order_ids:
                raise ScenarioError(where, f"{key}.{oid}", f"no order {oid!r} in the scenario")


def _orders(scenario: Scenario, items: Sequence[OrderItem], folder: Path, vehicle_ids: Sequence[str]
            ) -> list[PlannedOrder]:
    if items:
        return sorted((PlannedOrder(o.id, o.at_s, o.dropoff, o.weight_kg, o.size.value, o.priority.value,
                                    o.window_min * 60.0, None if o.handoff is None else o.handoff.value,
                                    o.handoff_pin)
                       for o in items), key=lambda p: p.at_s)
    spec = scenario.orders
    assert spec.per_hour is not None
    assert spec.hours is not None
    # The stream of the fleet the run serves, exactly as the demo would draw it.
    with tempfile.TemporaryDirectory(prefix="fleetctl-scenario-") as tmp:
        site = load_site(site_with_fleet(folder, vehicle_ids, Path(tmp) / "site"))
    members = fleet_members(site)
    kinds = {m.kind for m in members.values()}
    return order_stream(site, hours=spec.hours, per_hour=spec.per_hour, seed=spec.seed, drones="drone" in kinds,
                        robots="robot" in kinds, prefix=scenario.name,
                        robot_depots=frozenset(m.depot for m in members.values() if m.kind == "robot"))


def facts_of(site: Site, orders: Mapping[str, OrderRecord], events: Sequence[EventRecord], tracks: Sequence[Track],
             kpis: Mapping[str, Any], actions: Sequence[Outcome]) -> Facts:
    return Facts(orders, events, tracks, site.zones, zones_from_events(events), kpis, actions)


def facts_of_folder(run: RunFolder, kpis: Mapping[str, Any]) -> Facts:
    """The facts of a finished run, from its folder (fleetctl report re-checks a scenario run)."""
    section = run.old.get("scenario", {})
    actions = [Outcome(a["index"], a["action"], a["status"], a.get("at_s"), a.get("detail", ""))
               for a in section.get("actions", [])]
    return facts_of(run.site, {o.order_id: o for o in run.orders}, run.events, list(run.tracks.values()), kpis,
                    actions)


def scenario_section(scenario: Scenario, checks: Sequence[Check], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    return {"name": scenario.name, "description": scenario.description, "file": str(scenario.source),
            "passed": all(c.ok for c in checks), "checks": [c.as_dict() for c in checks],
            "actions": [o.as_dict() for o in outcomes]}


def junit_properties(data: Mapping[str, Any]) -> dict[str, str]:
    timing = data.get("timing", {})
    return {"site": str(data.get("site")), "vehicles": str(data.get("backends", {}).get("vehicles")),
            "speed": str(timing.get("speed")), "simulated_s": str(timing.get("simulated_s")),
            "vehicles_used": ",".join(data.get("vehicles_used", []))}


def _keep_scenario(scenario: Scenario, out: Path) -> None:
    """A copy of the scenario (and its orders file) in the run's folder: what was asked, next to
    what happened."""
    if scenario.source.is_file():
        shutil.copyfile(scenario.source, out / SCENARIO_FILE)
        if scenario.orders.file is not None:
            orders = scenario.source.parent / scenario.orders.file
            (out / scenario.orders.file).parent.mkdir(parents=True, exist_ok=True)
            if orders.resolve() != (out / scenario.orders.file).resolve():
                shutil.copyfile(orders, out / scenario.orders.file)


def show_checks(console: Console, name: str, checks: Sequence[Check]) -> None:
    table = Table(title=f"scenario {name}: expectations", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("check")
    table.add_column("what happened")
    marks = {"passed": "[green]PASS[/green]", "failed": "[bold red]FAIL[/bold red]", "skipped": "[yellow]SKIP[/yellow]"}
    for check in checks:
        table.add_row(marks[check.verdict], check.name, check.message)
    console.print(table)
    failed = sum(1 for c in checks if c.verdict == "failed")
    skipped = sum(1 for c in checks if c.verdict == "skipped")
    verdict = "[bold red]FAILED[/bold red]" if failed else "[green]PASSED[/green]"
    console.print(f"scenario {name}: {verdict} ({len(checks) - failed - skipped} passed, {failed} failed, "
                  f"{skipped} skipped)", soft_wrap=True)
