"""A scenario's expectations, checked against what the run left: the orders and the event log from
the store, the tracks, the no-fly zones (the site's and those added during the run), the KPIs, and the
outcome of every action. Each expectation is one `Check`: passed, failed (with why) or skipped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fleetctl.demo.report import INCURSION_TOLERANCE_M, SAME_LEVEL_M
from fleetctl.orders.lifecycle import FINAL
from fleetctl.scenario.model import Expect
from fleetctl.scenario.timeline import Outcome
from fleetctl.store.records import EventRecord, OrderRecord
from fleetctl.tracks import Track, min_drone_separation, zone_incursions
from planner.airspace import NoFlyZone

Verdict = Literal["passed", "failed", "skipped"]
#: At most this many items are named in a failure's message (the rest are counted).
SHOWN = 8


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict != "failed"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "message": self.message}


@dataclass(frozen=True)
class Facts:
    """What the run left, for the checks."""

    orders: Mapping[str, OrderRecord]
    events: Sequence[EventRecord]
    tracks: Sequence[Track]
    site_zones: Sequence[NoFlyZone]
    added_zones: Sequence[NoFlyZone]  # each active from when it was added
    kpis: Mapping[str, Any]
    actions: Sequence[Outcome]


def check_all(expect: Expect, facts: Facts) -> list[Check]:
    """Every expectation of `expect` and every action, in a fixed order."""
    checks: list[Check] = []
    if expect.all_orders_terminal:
        checks.append(all_orders_terminal(facts.orders))
    if expect.no_double_delivery:
        checks.append(no_double_delivery(facts.events))
    if expect.no_zone_incursion:
        checks.append(no_zone_incursion(facts.tracks, facts.site_zones, facts.added_zones, expect.zone_grace_s))
    if expect.on_time_min is not None:
        checks.append(on_time_at_least(facts.kpis, expect.on_time_min))
    if expect.delivered_min is not None:
        checks.append(delivered_at_least(facts.orders, expect.delivered_min))
    if expect.min_separation_m is not None:
        checks.append(separation_at_least(facts.tracks, expect.min_separation_m))
    for order_id, states in expect.orders.items():
        checks.append(order_ends(facts.orders, order_id, [states] if isinstance(states, str) else states))
    for order_id, steps in expect.orders_went_through.items():
        checks.append(order_went_through(facts.events, order_id, [s.value for s in steps]))
    checks += [action_check(o) for o in facts.actions]
    return checks


def _some(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def all_orders_terminal(orders: Mapping[str, OrderRecord]) -> Check:
    name = "all orders terminal"
    open_ = [f"{o.order_id} ({o.state.value})" for o in orders.values() if o.state not in FINAL]
    if open_:
        return Check(name, "failed", f"{len(open_)} of {len(orders)} orders had not ended: {_some(open_)}")
    return Check(name, "passed", f"{len(orders)} orders, all ended")


def no_double_delivery(events: Sequence[EventRecord]) -> Check:
    name = "no order delivered twice"
    delivered = Counter(e.entity_id for e in events if e.entity == "order" and e.kind == "order.delivered")
    twice = [f"{oid} ({n}x)" for oid, n in sorted(delivered.items()) if n > 1]
    if twice:
        return Check(name, "failed", f"delivered more than once: {_some(twice)}")
    return Check(name, "passed", f"{len(delivered)} orders delivered, each once")


def no_zone_incursion(tracks: Sequence[Track], site_zones: Sequence[NoFlyZone], added: Sequence[NoFlyZone],
                      grace_s: float) -> Check:
    name = "no no-fly zone incursion"
    zones = [*site_zones, *(dataclasses.replace(z, active_from_s=(z.active_from_s or 0.0) + grace_s)
                            for z in added)]
    found = zone_incursions(tracks, zones, tolerance_m=INCURSION_TOLERANCE_M)
    if found:
        pairs = sorted({f"{i.vehicle_id} in {i.zone_id}" for i in found})
        deepest = max(i.depth_m for i in found)
        return Check(name, "failed", f"{len(found)} track samples inside an active zone ({_some(pairs)}; "
                                     f"deepest {deepest:.0f} m)")
    return Check(name, "passed", f"{len(zones)} zones ({len(added)} added during the run), no drone inside")


def on_time_at_least(kpis: Mapping[str, Any], share: float) -> Check:
    name = f"on time >= {100.0 * share:g} % of delivered"
    rate = kpis.get("on_time_rate")
    if rate is None:
        return Check(name, "failed", "nothing was delivered")
    verdict: Verdict = "passed" if rate >= share else "failed"
    return Check(name, verdict, f"{100.0 * rate:.1f} % on time ({kpis.get('on_time')} orders)")


def delivered_at_least(orders: Mapping[str, OrderRecord], count: int) -> Check:
    name = f"at least {count} delivered"
    n = sum(1 for o in orders.values() if o.state.value == "delivered")
    return Check(name, "passed" if n >= count else "failed", f"{n} of {len(orders)} delivered")


def separation_at_least(tracks: Sequence[Track], least_m: float) -> Check:
    name = f"drone separation >= {least_m:g} m"
    found = min_drone_separation(tracks, vertical_m=SAME_LEVEL_M)
    if found is None:
        return Check(name, "passed", f"no two drones were airborne within {SAME_LEVEL_M:g} m of height together")
    what = f"closest {found.horizontal_m:.1f} m ({'/'.join(found.pair)}, {found.vertical_m:.0f} m apart in height)"
    return Check(name, "passed" if found.horizontal_m >= least_m else "failed", what)


def order_ends(orders: Mapping[str, OrderRecord], order_id: str, states: Sequence[str]) -> Check:
    name = f"order {order_id} ends {' or '.join(states)}"
    record = orders.get(order_id)
    if record is None:
        return Check(name, "failed", "no such order in the store")
    state = record.state.value
    why = f"; reason {record.reason}" if record.reason else ""
    return Check(name, "passed" if state in states else "failed", f"ended {state}{why}")


def order_went_through(events: Sequence[EventRecord], order_id: str, steps: Sequence[str]) -> Check:
    name = f"order {order_id} went through {', '.join(steps)}"
    story = [e.kind.removeprefix("order.") for e in events if e.entity == "order" and e.entity_id == order_id]
    missing = [s for s in steps if s not in story]
    message = f"its story: {' -> '.join(story) or 'nothing'}"
    return Check(name, "failed" if missing else "passed", (f"never {', '.join(missing)}; " if missing else "") + message)


def action_check(outcome: Outcome) -> Check:
    name = f"action {outcome.index + 1}: {outcome.label}"
    if outcome.status == "done":
        return Check(name, "passed", f"done at t={outcome.at_s or 0.0:.0f}s" + (f" {outcome.detail}"
                                                                                  if outcome.detail else ""))
    if outcome.status == "skipped":
        return Check(name, "skipped", outcome.detail)
    if outcome.status == "pending":
        return Check(name, "failed", "never done: the run ended first")
    return Check(name, "failed", outcome.detail)
