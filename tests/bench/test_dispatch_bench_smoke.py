"""Smoke test of bench/dispatch_bench.py: a tiny instance (the Helsinki site's fleet, 30 minutes of
orders at 120/h, beyond what it carries) through the simulation with both dispatchers and the PyVRP
bound. Accounting only: figures are the bench's business."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pyvrp")

from bench._dispatch_sim import (
    FifoNearest,
    FleetctlAssign,
    generate_orders,
    make_costs,
    simulate,
    site_fleet,
)
from bench._vrp_bound import clairvoyant
from planner.site import load_site

SITE = Path(__file__).resolve().parents[2] / "sitl" / "worlds" / "helsinki"


@pytest.mark.timeout(60)
def test_tiny_instance_through_both_dispatchers_and_the_bound() -> None:
    site = load_site(SITE)
    costs = make_costs(site, warm=False)  # lazily: only the drop points drawn
    fleet = site_fleet(site)
    chargers = {d: site.depots[d].chargers for d in site.depots}
    depot_xy = {d: site.depots[d].xy_m for d in site.depots}
    orders = generate_orders(site, costs, rate_per_h=120.0, hours=0.5, seed=3)
    assert orders
    assert all(o.kinds and o.earliest_s >= o.arrival_s and o.latest_s > o.earliest_s for o in orders)
    assert orders == generate_orders(site, costs, rate_per_h=120.0, hours=0.5, seed=3)  # seeded

    for dispatcher in (FifoNearest(), FleetctlAssign(costs)):
        res = simulate(fleet, orders, costs, chargers, depot_xy, dispatcher)
        delivered = {d.order_id for d in res.deliveries}
        assert len(delivered) == len(res.deliveries)
        assert delivered.isdisjoint(res.dropped)
        assert len(delivered) + len(res.dropped) == len(orders), dispatcher.name
        assert res.on_time + res.late == len(res.deliveries)
        assert res.latencies_s
        assert res.refused == 0
        by_id = {o.order_id: o for o in orders}
        assert all(d.depart_s >= by_id[d.order_id].arrival_s for d in res.deliveries)
        assert res.on_time > 0, dispatcher.name

    bound = clairvoyant(site, fleet, orders, costs, seconds=1.0)
    assert bound.feasible
    assert bound.solve_s > 0, bound.note  # beyond the fleet: PyVRP searched
    assert bound.greedy_on_time <= bound.orders
    assert 0 < bound.on_time <= len(orders)
    assert bound.on_time_weighted >= bound.greedy_weighted  # warm-started: never below its greedy plan
