"""The dispatch solver on hand-made fleets and costs: who goes, when, charging first, priorities,
pins, and, as properties over random instances, the plan's invariants."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.assign import Assignment, Decision, Job, MemoCosts, TripCost, Worker, assign
from planner.charging import charge_time_s, charge_time_s_array, charged_wh
from planner.vehicle_model import VehicleModel

QUAD = VehicleModel(name="quad", kind="drone", max_payload_kg=2.5, cruise_speed_m_s=12.0, battery_wh=500.0,
                    empty_mass_kg=6.0, hover_power_w=650.0, cruise_power_w=560.0, reserve_fraction=0.25,
                    charge_power_w=400.0)
BOT = VehicleModel(name="bot", kind="robot", max_payload_kg=10.0, cruise_speed_m_s=1.5, battery_wh=1000.0,
                   empty_mass_kg=30.0, rolling_power_w=90.0, reserve_fraction=0.15, charge_power_w=300.0)
DEPOTS = {"a": (0.0, 0.0), "b": (3000.0, 0.0)}


class LineCosts:
    """Straight-line trips: drones at cruise speed plus a fixed hover, robots at walking pace."""

    def __init__(self) -> None:
        self.calls = 0

    def trip(self, model: VehicleModel, depot: str, job: Job) -> TripCost | None:
        self.calls += 1
        if model.kind not in job.kinds or job.weight_kg > model.max_payload_kg:
            return None
        d_m = math.dist(DEPOTS[depot], job.dropoff_xy_m)
        if model.kind == "drone":
            out_s = d_m / model.cruise_speed_m_s + 20.0
            round_s = 2 * out_s + 30.0
            energy_wh = round_s * 600.0 / 3600.0 * (1 + job.weight_kg / 10)
        else:
            if d_m > 4000:
                return None
            out_s = d_m / model.cruise_speed_m_s
            round_s = 2 * out_s + 180.0
            energy_wh = round_s * 110.0 / 3600.0
        return TripCost(out_s, round_s, energy_wh, 40.0 if model.kind == "drone" else None)


def job(order_id: str, x_m: float, *, kinds: tuple[str, ...] = ("drone", "robot"), weight_kg: float = 1.0,
        earliest_s: float = 0.0, latest_s: float = 3600.0, priority: int = 1, depot: str | None = None,
        pinned: str | None = None) -> Job:
    return Job(order_id, frozenset(kinds), depot, f"xy:{x_m},0", (x_m, 0.0), weight_kg, priority, earliest_s,
               latest_s, pinned)


def worker(vehicle_id: str, model: VehicleModel = QUAD, depot: str = "a", *, ready_s: float = 0.0,
           battery_pct: float = 100.0, on_charger: bool = False) -> Worker:
    return Worker(vehicle_id, model, depot, ready_s, model.battery_wh * battery_pct / 100.0, on_charger)


def test_charge_model_is_linear_then_tapers() -> None:
    half_s = charge_time_s(QUAD, 0.0, 250.0)
    assert half_s == pytest.approx(3600.0 * 250.0 / 400.0)
    last_fifth_s = charge_time_s(QUAD, 400.0, 500.0)
    assert last_fifth_s > 3600.0 * 100.0 / 400.0  # the taper is slower than full power
    assert charged_wh(QUAD, 100.0, charge_time_s(QUAD, 100.0, 470.0)) == pytest.approx(470.0)
    assert charged_wh(QUAD, 480.0, 1e9) == pytest.approx(500.0)
    froms = np.array([0.0, 100.0, 390.0, 450.0])
    tos = np.array([300.0, 450.0, 420.0, 500.0])
    packs = np.full(4, 500.0)
    powers = np.full(4, 400.0)
    expected = [charge_time_s(QUAD, a, b) for a, b in zip(froms, tos, strict=True)]
    assert charge_time_s_array(packs, powers, froms, tos) == pytest.approx(expected)


def test_a_drone_takes_what_it_delivers_sooner_and_a_robot_what_only_it_can_carry() -> None:
    jobs = [job("far", 2500.0), job("heavy", 800.0, weight_kg=6.0)]
    decision = assign(jobs, [worker("q1"), worker("r1", BOT)], LineCosts(), 0.0, chargers={"a": 2})
    plan = decision.by_order()
    assert plan["far"].vehicle_id == "q1"
    assert plan["heavy"].vehicle_id == "r1"
    assert decision.unplaced == {}
    assert all(a.on_time for a in decision.assignments)


def test_a_near_order_goes_to_the_robot_when_it_is_on_time_anyway_if_the_drone_is_needed() -> None:
    """Least fleet time: the drone is free again sooner after the far order, the robot takes the
    near one (on time) instead of the drone doing both, one late."""
    jobs = [job("near", 300.0, latest_s=1200.0), job("far", 2800.0, latest_s=400.0)]
    decision = assign(jobs, [worker("q1"), worker("r1", BOT)], LineCosts(), 0.0, chargers={"a": 2})
    plan = decision.by_order()
    assert plan["far"].vehicle_id == "q1"
    assert plan["near"].vehicle_id == "r1"
    assert decision.weighted_on_time == 2


def test_a_vehicle_waits_for_the_window_and_departs_to_arrive_just_before_it() -> None:
    decision = assign([job("later", 1200.0, earliest_s=1800.0)], [worker("q1")], LineCosts(), 0.0,
                      chargers={"a": 1}, early_s=60.0)
    (a,) = decision.assignments
    assert a.arrive_s == pytest.approx(1800.0 - 60.0)


def test_a_low_battery_charges_first_and_a_busy_charger_makes_it_wait() -> None:
    jobs = [job("o1", 2000.0), job("o2", 2000.0, depot="a")]
    workers = [worker("q1", battery_pct=30.0), worker("q2", battery_pct=30.0)]
    decision = assign(jobs, workers, LineCosts(), 0.0, chargers={"a": 1})
    first, second = decision.assignments
    assert first.charge_from_s == 0.0
    assert first.depart_s > 0.0
    assert second.charge_from_s == pytest.approx(first.depart_s)  # the one charger was busy
    for a in (first, second):
        assert a.battery_at_depart_wh - a.energy_wh >= QUAD.battery_wh * QUAD.reserve_fraction - 1e-6


def test_without_a_charger_a_flat_vehicle_cannot_go() -> None:
    decision = assign([job("o1", 2000.0)], [worker("q1", battery_pct=26.0)], LineCosts(), 0.0, chargers={})
    assert decision.assignments == []
    assert "o1" in decision.unplaced


def test_medical_goes_first_when_only_one_can_be_on_time() -> None:
    jobs = [job("std", 2000.0, latest_s=400.0), job("med", 2000.0, latest_s=500.0, priority=10)]
    decision = assign(jobs, [worker("q1")], LineCosts(), 0.0, chargers={"a": 1})
    plan = decision.by_order()
    assert plan["med"].on_time
    assert not plan["std"].on_time  # placed after, late (allow_late)
    strict = assign(jobs, [worker("q1")], LineCosts(), 0.0, chargers={"a": 1}, allow_late=False)
    assert strict.unplaced == {"std": "would be late"}


def test_pins_depots_and_impossible_orders() -> None:
    jobs = [job("pinned", 500.0, pinned="q2"), job("at-b", 2500.0, depot="b"),
            job("nobody", 500.0, pinned="q9"), job("too-heavy", 500.0, weight_kg=50.0)]
    workers = [worker("q1"), worker("q2"), worker("qb", depot="b")]
    decision = assign(jobs, workers, LineCosts(), 0.0, chargers={"a": 2, "b": 1})
    plan = decision.by_order()
    assert plan["pinned"].vehicle_id == "q2"
    assert plan["at-b"].vehicle_id == "qb"
    assert "q9" in decision.unplaced["nobody"]
    assert "no vehicle" in decision.unplaced["too-heavy"]


def test_memo_costs_asks_once_per_order_and_vehicle_class() -> None:
    line = LineCosts()
    memo = MemoCosts(line)
    jobs = [job(f"o{i}", 100.0 * i) for i in range(1, 6)]
    workers = [worker("q1"), worker("q2"), worker("r1", BOT)]
    for now_s in (0.0, 30.0):
        assign(jobs, workers, memo, now_s, chargers={"a": 2})
    assert line.calls == 5 * 2  # two classes: quad@a, bot@a
    memo.forget({"o1"})
    assign(jobs, workers, memo, 60.0, chargers={"a": 2})
    assert line.calls == 12


def _check_plan(decision: Decision, jobs: list[Job], workers: list[Worker], chargers: dict[str, int],
                now_s: float) -> None:
    ids = {j.order_id for j in jobs}
    placed = [a.order_id for a in decision.assignments]
    assert len(placed) == len(set(placed))
    assert set(placed) | set(decision.unplaced) == ids
    assert not set(placed) & set(decision.unplaced)
    by_vehicle: dict[str, list[Assignment]] = defaultdict(list)
    for a in decision.assignments:
        by_vehicle[a.vehicle_id].append(a)
    models = {w.vehicle_id: w for w in workers}
    for vehicle_id, trips in by_vehicle.items():
        w = models[vehicle_id]
        trips.sort(key=lambda a: a.depart_s)
        free_s = max(w.ready_s, now_s)
        for a in trips:
            assert a.charge_from_s >= free_s - 1e-6
            assert a.depart_s >= a.charge_from_s
            assert a.arrive_s > a.depart_s
            assert a.back_s >= a.arrive_s
            reserve_wh = w.model.battery_wh * w.model.reserve_fraction
            assert a.battery_at_depart_wh - a.energy_wh >= reserve_wh - 1e-6
            free_s = a.back_s
    # Never more vehicles on a depot's chargers than it has (a held charger counts from the start).
    for depot, n in chargers.items():
        spans = [(a.charge_from_s, a.depart_s) for a in decision.assignments
                 if a.depot == depot and a.depart_s > a.charge_from_s]
        for t, _ in spans:
            busy = sum(1 for s, e in spans if s <= t < e)
            assert busy <= n


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_plans_respect_time_energy_and_chargers(data: st.DataObject) -> None:
    n_jobs = data.draw(st.integers(1, 25))
    jobs = []
    for i in range(n_jobs):
        earliest_s = data.draw(st.floats(0, 3600))
        jobs.append(job(f"o{i}", data.draw(st.floats(50, 3500)), weight_kg=data.draw(st.floats(0.1, 8.0)),
                        earliest_s=earliest_s, latest_s=earliest_s + data.draw(st.floats(600, 5400)),
                        priority=data.draw(st.sampled_from([1, 1, 1, 3, 10])),
                        kinds=data.draw(st.sampled_from([("drone",), ("robot",), ("drone", "robot")]))))
    workers = []
    for i in range(data.draw(st.integers(1, 6))):
        model = data.draw(st.sampled_from([QUAD, BOT]))
        workers.append(worker(f"v{i}", model, data.draw(st.sampled_from(["a", "b"])),
                              ready_s=data.draw(st.floats(0, 1800)), battery_pct=data.draw(st.floats(20, 100))))
    chargers = {"a": data.draw(st.integers(0, 2)), "b": data.draw(st.integers(0, 2))}
    decision = assign(jobs, workers, LineCosts(), 0.0, chargers=chargers)
    _check_plan(decision, jobs, workers, chargers, 0.0)
    # On-time deliveries never get fewer by allowing late ones afterwards.
    strict = assign(jobs, workers, LineCosts(), 0.0, chargers=chargers, allow_late=False)
    assert strict.weighted_on_time == decision.weighted_on_time
    assert all(a.on_time for a in strict.assignments)


def test_an_operator_pin_is_kept_even_if_another_vehicle_is_closer() -> None:
    jobs = [job("o1", 2500.0, pinned="qb")]
    workers = [worker("q1"), worker("qb", depot="b", ready_s=600.0)]
    (a,) = assign(jobs, workers, LineCosts(), 0.0, chargers={"a": 1, "b": 1}).assignments
    assert a.vehicle_id == "qb"
    assert a.depart_s >= 600.0
    assert replace(a, vehicle_id="x").vehicle_id == "x"


def test_a_vehicle_waiting_for_a_later_window_delivers_another_order_meanwhile() -> None:
    jobs = [job("later", 1500.0, earliest_s=1800.0, latest_s=2400.0), job("now", 1500.0, latest_s=4000.0)]
    decision = assign(jobs, [worker("q1")], LineCosts(), 0.0, chargers={"a": 1})
    plan = decision.by_order()
    assert plan["now"].depart_s == 0.0
    assert plan["now"].back_s <= plan["later"].depart_s
    assert plan["later"].on_time
    assert plan["later"].battery_at_depart_wh == pytest.approx(QUAD.battery_wh - plan["now"].energy_wh)


def test_no_vehicle_at_all_leaves_every_order_unplaced_with_a_reason() -> None:
    """A service just started hears no vehicle yet (seen on real PX4 after a restart)."""
    decision = assign([job("o1", 500.0), job("o2", 900.0)], [], LineCosts(), 0.0, chargers={"a": 1})
    assert decision.assignments == []
    assert decision.unplaced == {"o1": "no vehicle available", "o2": "no vehicle available"}
