"""4D intents and strategic deconfliction: the profile of an intent, the conflict check (never
missing a loss of separation that dense sampling finds), the book's placement (another layer or a
later departure, whichever delivers sooner) and its invariant on random order streams and the
bundled site."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from planner.deconflict import (
    Intent,
    IntentBook,
    NoConflictFreeSlot,
    Separation,
    closest_approach,
    conflict,
    drone_intent,
    min_horizontal_separation_m,
)
from planner.errors import PlanningError
from planner.flight import FlightPlanner, plan_flight
from planner.site import load_site
from planner.vehicle_model import VehicleModel

FloatArray = npt.NDArray[np.float64]

# As "quad-x4" in sitl/worlds/helsinki/site.toml.
QUAD = VehicleModel(
    name="quad-x4",
    kind="drone",
    max_payload_kg=2.5,
    cruise_speed_m_s=12.0,
    battery_wh=500.0,
    empty_mass_kg=6.0,
    hover_power_w=650.0,
    cruise_power_w=560.0,
    climb_speed_m_s=3.0,
    descent_speed_m_s=2.0,
)
ROBOT = VehicleModel(
    name="bot", kind="robot", max_payload_kg=10.0, cruise_speed_m_s=1.5, battery_wh=1000.0,
    empty_mass_kg=30.0, rolling_power_w=90.0,
)  # fmt: skip
LAYERS = (40.0, 55.0, 70.0)
SEP = Separation()
HELSINKI = Path(__file__).resolve().parents[2] / "sitl" / "worlds" / "helsinki"


def line(*points: tuple[float, float]) -> FloatArray:
    return np.array(points, dtype=np.float64)


def sortie(
    intent_id: str, path: FloatArray, depart_s: float, layer_m: float, vehicle_id: str | None = None
) -> Intent:
    return drone_intent(intent_id, vehicle_id or f"veh-{intent_id}", path, depart_s, layer_m, QUAD)


def dense_min_horizontal_m(a: Intent, b: Intent, vertical_m: float, step_s: float = 0.2) -> float:
    """Brute force, independent of the module: both plans sampled at the same instants."""
    t0, t1 = max(a.t_s[0], b.t_s[0]), min(a.t_s[-1], b.t_s[-1])
    if t0 > t1:
        return math.inf
    t = np.append(np.arange(t0, t1, step_s), t1)
    pa = np.column_stack([np.interp(t, a.t_s, a.xyz_m[:, c]) for c in range(3)])
    pb = np.column_stack([np.interp(t, b.t_s, b.xyz_m[:, c]) for c in range(3)])
    close = np.abs(pa[:, 2] - pb[:, 2]) < vertical_m
    if not close.any():
        return math.inf
    return float(np.hypot(pa[close, 0] - pb[close, 0], pa[close, 1] - pb[close, 1]).min())


def assert_separated(intents: list[Intent], sep: Separation) -> None:
    for a, b in itertools.combinations(intents, 2):
        if a.vehicle_id == b.vehicle_id:
            continue
        assert conflict(a, b, sep) is None, (a.intent_id, b.intent_id)
        assert dense_min_horizontal_m(a, b, sep.vertical_m) >= sep.horizontal_m, (a.intent_id, b.intent_id)


# ------------------------------------------------------------------ the intent


def test_drone_intent_profile() -> None:
    intent = sortie("o1", line((0, 0), (300, 400), (600, 400)), 100.0, 40.0)
    # climb 40/3, cruise (500 + 300)/12, descend 30/2, hover 30, climb 30/3, cruise back, land 40/2
    durations = [40 / 3, 500 / 12, 300 / 12, 15.0, 30.0, 10.0, 300 / 12, 500 / 12, 20.0]
    np.testing.assert_allclose(np.diff(intent.t_s), durations)
    assert intent.depart_s == 100.0
    assert intent.arrival_s == pytest.approx(100 + 40 / 3 + 800 / 12 + 15)
    assert intent.end_s == pytest.approx(100 + sum(durations))
    np.testing.assert_allclose(intent.xyz_m[intent.arrival_index], [600, 400, 10])
    np.testing.assert_allclose(intent.xyz_m[[0, -1]], [[0, 0, 0], [0, 0, 0]])
    assert intent.alt_band_m == (0.0, 40.0)
    assert intent.layer_m == 40.0
    np.testing.assert_allclose(intent.at(100 + 40 / 3 + 250 / 12), [150, 200, 40])
    assert not intent.t_s.flags.writeable
    later = intent.shifted(60.0)
    assert later.arrival_s == pytest.approx(intent.arrival_s + 60)
    np.testing.assert_array_equal(later.xyz_m, intent.xyz_m)


def test_drone_intent_edge_cases() -> None:
    # release at the layer and no hover: no zero-length legs; repeated path points are dropped
    intent = drone_intent(
        "o", "v", line((0, 0), (0, 0), (120, 0)), 0.0, 40.0, QUAD, release_alt_m=40.0, hover_s=0
    )
    np.testing.assert_allclose(np.diff(intent.t_s), [40 / 3, 10.0, 10.0, 20.0])
    assert intent.arrival_s == pytest.approx(40 / 3 + 10)
    with pytest.raises(ValueError, match="drone model"):
        drone_intent("o", "v", line((0, 0), (1, 0)), 0.0, 40.0, ROBOT)
    with pytest.raises(ValueError, match="release_alt_m"):
        drone_intent("o", "v", line((0, 0), (1, 0)), 0.0, 40.0, QUAD, release_alt_m=50.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        Intent("o", "v", np.array([0.0, 0.0]), np.zeros((2, 3)), (0.0, 0.0), 40.0, 0)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        Intent("o", "v", np.array([0.0, 1.0]), np.zeros((3, 3)), (0.0, 0.0), 40.0, 0)


def test_separation_window() -> None:
    assert Separation().window_s == 20.0
    assert Separation(time_buffer_s=10.0, step_s=1.0).window_steps == 20
    assert Separation(time_buffer_s=0.0).window_steps == 0
    with pytest.raises(ValueError, match="must be > 0"):
        Separation(horizontal_m=0.0)
    with pytest.raises(ValueError, match="time_buffer_s"):
        Separation(time_buffer_s=-1.0)


# ------------------------------------------------------------------ the check


def test_head_on_at_the_same_layer_conflicts() -> None:
    a = sortie("a", line((0, 0), (600, 0)), 0.0, 40.0)
    b = sortie("b", line((600, 0), (0, 0)), 0.0, 40.0)
    found = conflict(a, b, SEP)
    assert found is not None
    assert (found.intent_a, found.intent_b) == ("a", "b")
    assert found.horizontal_m < SEP.horizontal_m
    assert found.vertical_m < SEP.vertical_m
    assert abs(found.offset_s) <= SEP.window_s + SEP.step_s
    # without the buffer they meet at the middle, 40/3 + 300/12 s after take-off
    exact = conflict(a, b, Separation(time_buffer_s=0.0))
    assert exact is not None
    assert exact.t_s == pytest.approx(40 / 3 + 25, abs=2.5)
    horizontal_m, t_s = closest_approach(a, b, SEP.vertical_m)
    assert horizontal_m == pytest.approx(0.0, abs=1e-9)
    assert t_s == pytest.approx(40 / 3 + 25)


def test_a_near_miss_between_two_check_steps_is_caught() -> None:
    # Head-on on tracks 29 m apart, passing 0.58 s into a 1 s step: positions sampled at whole
    # seconds are >= 30.7 m apart, the planned trajectories come within 29 m.
    a = sortie("a", line((0, 0), (600, 0)), 0.0, 40.0)
    b = sortie("b", line((600, 29), (0, 29)), 0.5, 40.0)
    horizontal_m, t_s = closest_approach(a, b, 15.0)
    assert horizontal_m == pytest.approx(29.0)
    assert t_s == pytest.approx(40 / 3 + 25.25)
    whole_s = np.array([math.floor(t_s), math.ceil(t_s)], dtype=np.float64)
    assert (np.hypot(*(b.at(whole_s) - a.at(whole_s))[:, :2].T) > 30.0).all()
    assert conflict(a, b, Separation(time_buffer_s=0.0)) is not None
    assert conflict(b, a, Separation(time_buffer_s=0.0)) is not None


def test_adjacent_layers_pass_in_level_flight() -> None:
    def level(intent_id: str, alt_m: float, start: tuple[float, float], end: tuple[float, float]) -> Intent:
        xyz = np.array([[*start, alt_m], [*end, alt_m]])
        return Intent(intent_id, intent_id, np.array([0.0, 50.0]), xyz, (alt_m, alt_m), alt_m, 1)

    east = level("east", 40.0, (0, 0), (600, 0))
    # exactly vertical_m apart is separated; a metre less is not
    assert conflict(east, level("west55", 55.0, (600, 0), (0, 0)), SEP) is None
    assert min_horizontal_separation_m(east, level("west55", 55.0, (600, 0), (0, 0)), 15.0) == math.inf
    assert conflict(east, level("west54", 54.0, (600, 0), (0, 0)), SEP) is not None


def test_same_path_on_two_layers_meets_only_at_the_shared_depot() -> None:
    path = line((0, 0), (600, 0))
    low = sortie("low", path, 0.0, 40.0)
    high = sortie("high", path, 0.0, 55.0)
    found = conflict(low, high, SEP)
    # Simultaneous take-off from one pad: they are together on the ground and in the first metres.
    assert found is not None
    assert found.t_s < 40 / 3 + SEP.window_s
    assert math.dist(low.at(found.t_s)[:2], (0, 0)) < SEP.horizontal_m
    # Once both cruise (each at its layer) they are exactly vertical_m apart: never too close there.
    both_cruise = np.linspace(55 / 3 + 1, 40 / 3 + 600 / 12 - 1, 200)
    assert np.all(np.abs(high.at(both_cruise)[:, 2] - low.at(both_cruise)[:, 2]) >= 15.0)
    # Elsewhere the same layout is fine: pads 300 m apart, same corridor, two layers.
    other_pad = sortie("high2", line((-300, 0), (900, 0)), 0.0, 55.0)
    assert conflict(low, other_pad, SEP) is None
    # The book delays the second take-off from the shared pad (another layer alone cannot help).
    book = IntentBook(SEP, [low])
    placed = book.place(lambda layer, t: sortie("high", path, t, layer), LAYERS, 0.0)
    assert placed.depart_s > 0.0
    assert book.is_free(placed)
    assert dense_min_horizontal_m(low, placed, SEP.vertical_m) >= SEP.horizontal_m


def test_time_separated_sorties_do_not_conflict() -> None:
    path = line((0, 0), (600, 0))
    a = sortie("a", path, 0.0, 40.0)
    just_after = sortie("b", path, a.end_s + 1.0, 40.0)
    # Back on the pad one second before the other takes off: fine with exact timing, not within
    # the buffer (either may be 10 s off).
    assert conflict(a, just_after, Separation(time_buffer_s=0.0)) is None
    assert conflict(a, just_after, SEP) is not None
    well_after = sortie("b", path, a.end_s + SEP.window_s + 1.0, 40.0)
    assert conflict(a, well_after, SEP) is None
    assert conflict(well_after, a, SEP) is None
    horizontal_m, t_s = closest_approach(a, well_after, SEP.vertical_m)
    assert horizontal_m == math.inf
    assert math.isnan(t_s)


def test_crossing_paths_far_apart_in_time() -> None:
    a = sortie("a", line((-600, 0), (600, 0)), 0.0, 40.0)
    b = sortie("b", line((0, -600), (0, 600)), 0.0, 40.0)
    assert conflict(a, b, SEP) is not None  # both over (0, 0) at 40/3 + 50 s
    assert conflict(a, b.shifted(25.0), SEP) is None  # 25 s later: 300 m apart at worst buffer
    assert conflict(a, b.shifted(15.0), SEP) is not None  # within the buffer


def assert_never_misses(a: Intent, b: Intent, sep: Separation) -> None:
    """Whatever timing errors within the buffer, dense sampling finds no loss the check missed."""
    found = conflict(a, b, sep) is not None
    for shift_s in np.linspace(-sep.window_s, sep.window_s, 9):
        if dense_min_horizontal_m(a, b.shifted(float(shift_s)), sep.vertical_m) < sep.horizontal_m:
            assert found, f"missed a loss of separation with {shift_s} s of timing error"
            return


@settings(deadline=None, max_examples=60)
@given(
    coords=st.lists(st.floats(-300, 300), min_size=8, max_size=8),
    layers=st.tuples(st.sampled_from((40.0, 50.0, 55.0, 70.0)), st.sampled_from((40.0, 50.0, 55.0, 70.0))),
    shift_s=st.floats(-200, 200),
    buffer_s=st.sampled_from((0.0, 5.0, 10.0)),
)
def test_the_check_never_misses_and_closest_approach_is_exact(
    coords: list[float], layers: tuple[float, float], shift_s: float, buffer_s: float
) -> None:
    a = sortie("a", line((coords[0], coords[1]), (coords[2], coords[3])), 0.0, layers[0])
    b = sortie("b", line((coords[4], coords[5]), (coords[6], coords[7])), shift_s, layers[1])
    sep = Separation(time_buffer_s=buffer_s)
    assert_never_misses(a, b, sep)
    assert_never_misses(b, a, sep)
    # closest_approach is exact: no sample comes closer, and a sample near its time comes close
    exact_m, t_s = closest_approach(a, b, sep.vertical_m)
    sampled_m = dense_min_horizontal_m(a, b, sep.vertical_m)
    assert sampled_m >= exact_m - 1e-6
    if math.isfinite(exact_m):
        rel = b.at(t_s) - a.at(t_s)
        assert math.hypot(rel[0], rel[1]) == pytest.approx(exact_m, abs=1e-6)
        assert abs(rel[2]) <= sep.vertical_m + 1e-9
    event("conflict" if conflict(a, b, sep) else "clear")


# ------------------------------------------------------------------ the book


def test_place_takes_another_layer_when_that_delivers_sooner() -> None:
    crossing = sortie("a", line((-600, 0), (600, 0)), 0.0, 40.0)  # over (0, 0) at 40/3 + 50 s
    book = IntentBook(SEP, [crossing])
    path = line((0, -600), (0, 600))

    def make(layer_m: float, depart_s: float) -> Intent:
        return sortie("x", path, depart_s, layer_m)

    assert not book.is_free(make(40.0, 0.0))
    placed = book.place(make, LAYERS, 0.0)
    assert (placed.layer_m, placed.depart_s) == (55.0, 0.0)
    assert "x" not in book  # place alone is a query
    book.add(placed)
    assert book.intents == (crossing, placed)
    assert dense_min_horizontal_m(crossing, placed, SEP.vertical_m) >= 600.0  # both on the ground


def test_place_delays_when_that_delivers_sooner_than_a_higher_layer() -> None:
    sep = Separation(time_buffer_s=2.0)
    # Over (0, 0) when x would be there: one at 40 m, one at 55 m (different vehicles).
    at_40 = sortie("a", line((-600, 0), (600, 0)), 0.0, 40.0)
    at_55 = sortie("b", line((600, 0), (-600, 0)), 0.0, 55.0)
    book = IntentBook(sep, [at_40, at_55])
    path = line((0, -600), (0, 600))

    def make(layer_m: float, depart_s: float) -> Intent:
        return sortie("x", path, depart_s, layer_m)

    assert not book.is_free(make(40.0, 0.0))
    assert not book.is_free(make(55.0, 0.0))
    assert book.is_free(make(70.0, 0.0))  # free, but 25 s more climbing and descending
    placed = book.place(make, LAYERS, 0.0, step_s=15.0, accept=True)
    assert (placed.layer_m, placed.depart_s) == (40.0, 15.0)
    assert placed.arrival_s < make(70.0, 0.0).arrival_s
    assert book.get("x") is placed
    assert book.conflicts_with(placed) == []


def test_place_raises_when_no_slot_and_leaves_the_book_alone() -> None:
    # A drone hovering low over the pad for an hour blocks every take-off from it.
    hover = Intent(
        "h", "hv", np.array([0.0, 3600.0]), np.array([[5.0, 0, 5.0], [5.0, 0, 5.0]]), (5.0, 5.0), 5.0, 0
    )
    book = IntentBook(SEP, [hover])
    with pytest.raises(NoConflictFreeSlot, match="within 600 s") as info:
        book.place(
            lambda layer, t: sortie("x", line((0, 0), (500, 0)), t, layer), LAYERS, 0.0, max_delay_s=600.0
        )
    assert isinstance(info.value, PlanningError)
    assert info.value.layers_m == LAYERS
    assert book.intents == (hover,)


def test_a_vehicle_never_conflicts_with_itself() -> None:
    path = line((0, 0), (500, 0))
    first = sortie("s1", path, 0.0, 40.0, vehicle_id="quad-1")
    again = sortie("s2", path, first.end_s, 40.0, vehicle_id="quad-1")
    book = IntentBook(SEP, [first])
    assert conflict(first, again, SEP) is not None  # the geometry does meet ...
    assert book.is_free(again)  # ... but it is one drone landing and taking off again


def test_book_add_remove_replace_expire() -> None:
    path = line((0, 0), (500, 0))
    a = sortie("a", path, 0.0, 40.0)
    b = sortie("b", line((2000, 0), (2500, 0)), 0.0, 40.0)
    book = IntentBook(SEP, [a, b])
    assert len(book) == 2
    assert "a" in book
    with pytest.raises(ValueError, match="already"):
        book.add(a)
    # expire: gone only once nothing departing now could still meet it within the buffer
    assert book.expire(a.end_s) == []
    assert book.expire(a.end_s + SEP.window_s + 1.0) == [a, b]
    assert len(book) == 0
    book.add(a)
    # a delayed sortie is replaced, and the conflicts of its new timing are reported
    c = sortie("c", path, 200.0, 40.0)
    book.add(c)
    assert book.replace(a.shifted(200.0))[0].intent_b == "c"
    assert book.get("a").depart_s == 200.0
    assert book.replace(a) == []
    assert book.remove("c") is c
    with pytest.raises(KeyError, match="no intent"):
        book.remove("c")
    assert book.intents == (a,)


DEPOTS = ((0.0, 0.0), (900.0, 150.0), (-400.0, 800.0))


@settings(deadline=None, max_examples=60)
@given(
    orders=st.lists(
        st.tuples(
            st.integers(0, len(DEPOTS) - 1),
            st.floats(-1000, 1000),
            st.floats(-1000, 1000),
            st.floats(0, 900),
        ),
        min_size=2,
        max_size=10,
    )
)
def test_placing_a_stream_of_orders_keeps_every_pair_separated(
    orders: list[tuple[int, float, float, float]],
) -> None:
    book = IntentBook(SEP)
    for n, (depot, x, y, request_s) in enumerate(sorted(orders, key=lambda o: o[3])):
        path = line(DEPOTS[depot], (x, y))

        def make(layer_m: float, depart_s: float, path: FloatArray = path, n: int = n) -> Intent:
            return sortie(f"o{n}", path, depart_s, layer_m)

        placed = book.place(make, LAYERS, request_s, accept=True)
        assert placed.depart_s >= request_s
        event(f"delayed: {placed.depart_s > request_s}")
        event(f"layer {placed.layer_m:g}")
    assert len(book) == len(orders)
    assert_separated(list(book.intents), SEP)


# ------------------------------------------------------------------ the bundled site


def test_bundled_site_sorties_placed_conflict_free() -> None:
    site = load_site(HELSINKI)
    model = site.vehicle_model("quad-x4")
    layers = site.cruise_layers_m
    planner = FlightPlanner(site.airspace, max_alt_m=max(layers))
    drops = sorted((d for d in site.drop_points.values() if d.drone_ok), key=lambda d: d.name)[::23][:6]
    book = IntentBook(SEP)
    for n, (depot, drop) in enumerate(itertools.product(site.depots.values(), drops)):
        pad = depot.pads[n % len(depot.pads)]
        plan = plan_flight(planner, pad.xy_m, drop.xy_m, model, layers[0])

        def make(
            layer_m: float, depart_s: float, points: FloatArray = plan.path.points, n: int = n
        ) -> Intent:
            return drone_intent(f"order-{n}", f"quad-{n}", points, depart_s, layer_m, model)

        # the intent's outbound timing agrees with the flight plan's legs
        first = make(layers[0], 0.0)
        outbound_s = sum(leg.duration_s for leg in plan.legs if leg.kind != "descent")
        assert first.arrival_s == pytest.approx(outbound_s + (layers[0] - 10.0) / model.descent_speed_m_s)
        # all requested at once: the book spreads them over layers and departures
        book.place(make, layers, 0.0, accept=True)
    intents = list(book.intents)
    assert len(intents) == 2 * len(drops)
    assert len({i.layer_m for i in intents}) > 1
    assert_separated(intents, SEP)


def test_one_check_against_sixty_is_fast() -> None:
    rng = np.random.default_rng(7)
    book = IntentBook(SEP)
    for n in range(60):
        depot = DEPOTS[n % len(DEPOTS)]
        book.add(sortie(f"o{n}", line(depot, tuple(rng.uniform(-1000, 1000, 2))), n * 5.0, LAYERS[n % 3]))
    new = sortie("new", line(DEPOTS[0], (700.0, -300.0)), 120.0, 55.0)
    book.conflicts_with(new)
    runs = []
    for _ in range(20):
        t0 = time.perf_counter()
        book.conflicts_with(new)
        runs.append(time.perf_counter() - t0)
    assert sorted(runs)[len(runs) // 2] < 0.010
