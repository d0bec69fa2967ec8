"""4D intents of drone sorties and their strategic deconfliction. Pure: no I/O, no clock.

An `Intent` is a sortie's planned trajectory in space and time: piecewise linear between vertices
`t_s` (K,) and `xyz_m` (K, 3) (local metres, altitude above ground). `drone_intent` builds one from a
horizontal path: climb over the start (the pad) to the cruise layer, cruise the path, descend over the
drop point to the release height, hover, climb back to the layer, cruise the path reversed, descend and
land where it started.

Two intents conflict when, at some moment, they are closer than `Separation.horizontal_m`
horizontally AND closer than `Separation.vertical_m` vertically, allowing for each drone being up to
`Separation.time_buffer_s` early or late (see `Separation`).

`IntentBook` holds the accepted intents and places new ones: a new intent that conflicts with an
accepted one gets another cruise layer or a later departure, whichever delivers sooner.

How the check works (`conflict`, `IntentBook.conflicts_with`): time is cut into intervals of
`Separation.step_s` on one global grid (interval k is [k * step_s, (k + 1) * step_s)); each intent
becomes one axis-aligned box per interval, containing every position it passes in that interval (a
piecewise-linear path between two instants lies in the box of its end points and inner vertices). A
box-to-box distance is a lower bound of the distance between any two points of the boxes, so a pair
of boxes found apart proves the drones apart: the check never misses a conflict, whatever the step;
a smaller step only makes it less pessimistic (at 12 m/s and 1 s, a box is at most 12 m long). Boxes
keep altitude exact in level flight, so layers exactly `vertical_m` apart do not conflict. A coarse
pass compares each box of one intent with the union of the other's boxes over the whole time window
(sliding minimum/maximum, computed once per accepted intent); only where that union comes near does
the fine pass compare box against box for every time offset in the window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from planner.errors import NoConflictFreeSlot
from planner.geo import FloatArray
from planner.vehicle_model import VehicleModel

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_RELEASE_ALT_M = 10.0
#: Hover over the drop point while the parcel is lowered; the same figure as
#: fleetctl.trip.DRONE_RELEASE_HOVER_S (planner may not import fleetctl, so it is repeated here).
DEFAULT_HOVER_S = 30.0


# --------------------------------------------------------------------------- intents


@dataclass(frozen=True, eq=False)
class Intent:
    """A sortie's 4D trajectory: vertices `t_s` (K,), strictly increasing, and `xyz_m` (K, 3).

    `alt_band_m` (min, max) is the altitude band it sweeps, `layer_m` its cruise layer and
    `arrival_index` the vertex at which it reaches the release height over the drop point.
    The arrays are copied and made read-only.
    """

    intent_id: str
    vehicle_id: str
    t_s: FloatArray
    xyz_m: FloatArray
    alt_band_m: tuple[float, float]
    layer_m: float
    arrival_index: int

    def __post_init__(self) -> None:
        t = np.array(self.t_s, dtype=np.float64)
        xyz = np.array(self.xyz_m, dtype=np.float64)
        if t.ndim != 1 or t.size == 0:
            raise ValueError(f"intent {self.intent_id!r}: t_s must be a non-empty 1-D array")
        if xyz.shape != (t.size, 3):
            raise ValueError(f"intent {self.intent_id!r}: xyz_m must be ({t.size}, 3), got {xyz.shape}")
        if not (np.isfinite(t).all() and np.isfinite(xyz).all()):
            raise ValueError(f"intent {self.intent_id!r}: times and positions must be finite")
        if not (np.diff(t) > 0).all():
            raise ValueError(f"intent {self.intent_id!r}: t_s must be strictly increasing")
        if not 0 <= self.arrival_index < t.size:
            raise ValueError(f"intent {self.intent_id!r}: arrival_index {self.arrival_index} out of range")
        lo, hi = self.alt_band_m
        if not lo <= hi:
            raise ValueError(f"intent {self.intent_id!r}: alt_band_m {self.alt_band_m} is not (min, max)")
        t.flags.writeable = False
        xyz.flags.writeable = False
        object.__setattr__(self, "t_s", t)
        object.__setattr__(self, "xyz_m", xyz)
        object.__setattr__(self, "alt_band_m", (float(lo), float(hi)))
        object.__setattr__(self, "layer_m", float(self.layer_m))

    @property
    def depart_s(self) -> float:
        """Take-off: the intent starts here."""
        return float(self.t_s[0])

    @property
    def end_s(self) -> float:
        """Back on the ground: the sortie, and the intent, end here."""
        return float(self.t_s[-1])

    @property
    def arrival_s(self) -> float:
        """When it reaches the release height over the drop point (the delivery time)."""
        return float(self.t_s[self.arrival_index])

    def at(self, t_s: float | FloatArray) -> FloatArray:
        """Planned positions (..., 3) at the given times (clamped to the intent's span)."""
        t = np.asarray(t_s, dtype=np.float64)
        return np.stack([np.interp(t, self.t_s, self.xyz_m[:, c]) for c in range(3)], axis=-1)

    def shifted(self, delay_s: float) -> Intent:
        """The same trajectory `delay_s` later (e.g. a sortie held on the ground)."""
        return Intent(
            self.intent_id,
            self.vehicle_id,
            self.t_s + float(delay_s),
            self.xyz_m,
            self.alt_band_m,
            self.layer_m,
            self.arrival_index,
        )


def drone_intent(
    intent_id: str,
    vehicle_id: str,
    path_xy_m: FloatArray,
    depart_s: float,
    layer_m: float,
    model: VehicleModel,
    *,
    release_alt_m: float = DEFAULT_RELEASE_ALT_M,
    hover_s: float = DEFAULT_HOVER_S,
) -> Intent:
    """The round trip of a drone along `path_xy_m` (N, 2), from its first point (the pad) to its last.

    Climb at `climb_speed_m_s` to `layer_m`, cruise at `cruise_speed_m_s` (still air), descend at
    `descent_speed_m_s` to `release_alt_m`, hover `hover_s`, climb back, cruise the reversed path,
    descend and land at the start.
    """
    if not model.is_drone:
        raise ValueError(f"a drone intent needs a drone model, {model.name!r} is a {model.kind}")
    path = np.asarray(path_xy_m, dtype=np.float64)
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] == 0:
        raise ValueError(f"path_xy_m must be (N, 2) with N >= 1, got {path.shape}")
    if not np.isfinite(path).all():
        raise ValueError("path_xy_m must be finite")
    if not layer_m > 0:
        raise ValueError(f"layer_m must be > 0, got {layer_m}")
    if not 0 <= release_alt_m <= layer_m:
        raise ValueError(f"release_alt_m must be in [0, layer_m={layer_m}], got {release_alt_m}")
    if not hover_s >= 0:
        raise ValueError(f"hover_s must be >= 0, got {hover_s}")
    moved = np.r_[True, np.any(np.diff(path, axis=0) != 0, axis=1)]
    pts = path[moved]
    layer = float(layer_m)
    release = float(release_alt_m)

    steps_m = np.hypot(*np.diff(pts, axis=0).T)
    cruise_s = np.cumsum(steps_m) / model.cruise_speed_m_s  # (N-1,)
    climb_s = layer / model.climb_speed_m_s
    down_to_release_s = (layer - release) / model.descent_speed_m_s
    up_from_release_s = (layer - release) / model.climb_speed_m_s
    land_s = layer / model.descent_speed_m_s

    times: list[float] = []
    points: list[tuple[float, float, float]] = []

    def vertex(dt_s: float, x: float, y: float, z: float) -> None:
        # A leg of no duration (release at the layer, no hover, a leg of a few nanometres) adds no vertex.
        t = (times[-1] if times else float(depart_s)) + dt_s
        if times and not t > times[-1]:
            return
        times.append(t)
        points.append((x, y, z))

    x0, y0 = float(pts[0, 0]), float(pts[0, 1])
    xn, yn = float(pts[-1, 0]), float(pts[-1, 1])
    vertex(0.0, x0, y0, 0.0)
    vertex(climb_s, x0, y0, layer)
    prev_s = 0.0
    for (x, y), leg_end_s in zip(pts[1:], cruise_s, strict=True):
        vertex(float(leg_end_s) - prev_s, float(x), float(y), layer)
        prev_s = float(leg_end_s)
    vertex(down_to_release_s, xn, yn, release)
    arrival_index = len(times) - 1
    vertex(hover_s, xn, yn, release)
    vertex(up_from_release_s, xn, yn, layer)
    back = pts[::-1]
    back_s = np.cumsum(steps_m[::-1]) / model.cruise_speed_m_s
    prev_s = 0.0
    for (x, y), leg_end_s in zip(back[1:], back_s, strict=True):
        vertex(float(leg_end_s) - prev_s, float(x), float(y), layer)
        prev_s = float(leg_end_s)
    vertex(land_s, x0, y0, 0.0)
    return Intent(
        intent_id,
        vehicle_id,
        np.asarray(times, dtype=np.float64),
        np.asarray(points, dtype=np.float64),
        (0.0, layer),
        layer,
        arrival_index,
    )


# --------------------------------------------------------------------------- separation


@dataclass(frozen=True)
class Separation:
    """Minimum separation between two drones, and the timing uncertainty of a plan.

    Each drone may fly up to `time_buffer_s` early or late against its plan. Two of them may be off
    in opposite directions, so a planned position of one at time t is compared with the other's
    planned positions over [t - 2 * time_buffer_s, t + 2 * time_buffer_s]: the drones are kept apart
    for every pair of timing errors within the buffer. (Inflating the horizontal separation by
    speed x buffer instead would also be safe, but it treats a drone climbing in place like one
    cruising, and a vertical inflation would make adjacent layers conflict in level flight.)
    `step_s` is the time resolution of the check (see the module docstring: the check stays
    conservative at any step; a smaller one is less pessimistic and slower).
    """

    horizontal_m: float = 30.0
    vertical_m: float = 15.0
    time_buffer_s: float = 10.0
    step_s: float = 1.0

    def __post_init__(self) -> None:
        if not (self.horizontal_m > 0 and self.vertical_m > 0 and self.step_s > 0):
            raise ValueError(f"separations and step must be > 0: {self}")
        if not 0 <= self.time_buffer_s < math.inf:
            raise ValueError(f"time_buffer_s must be >= 0 and finite, got {self.time_buffer_s}")

    @property
    def window_s(self) -> float:
        """The largest time offset between two compared positions: twice the buffer."""
        return 2.0 * self.time_buffer_s

    @property
    def window_steps(self) -> int:
        """Intervals of `step_s` that two compared positions may be apart on the grid.

        Positions at times sa, sb with |sa - sb| <= window_s lie in intervals ka, kb with
        |ka - kb| < window_s / step_s + 1, so at most ceil(window_s / step_s).
        """
        return math.ceil(self.window_s / self.step_s)


@dataclass(frozen=True)
class Conflict:
    """Intent `intent_a` at `t_s` and `intent_b` at `t_s + offset_s` (|offset_s| within the window,
    give or take one step) are too close: `horizontal_m` and `vertical_m` are the separations of
    those two planned positions (the closest pair sampled in the first pair of check intervals found
    too close; the check works on boxes, so this can slightly exceed the separation it broke).
    """

    intent_a: str
    intent_b: str
    t_s: float
    offset_s: float
    horizontal_m: float
    vertical_m: float


# --------------------------------------------------------------------------- boxes on the time grid


@dataclass(frozen=True, eq=False)
class _Boxes:
    """One box per grid interval k0, k0 + 1, ...: lo (n, 3) and hi (n, 3)."""

    k0: int
    lo: FloatArray
    hi: FloatArray

    @property
    def k_end(self) -> int:
        """Last interval (inclusive)."""
        return self.k0 + len(self.lo) - 1


def _boxes(intent: Intent, step_s: float) -> _Boxes:
    t, p = intent.t_s, intent.xyz_m
    k0 = math.floor(t[0] / step_s)
    n = math.floor(t[-1] / step_s) - k0 + 1
    edges = np.clip((k0 + np.arange(n + 1)) * step_s, t[0], t[-1])
    at_edges = intent.at(edges)
    lo = np.minimum(at_edges[:-1], at_edges[1:])
    hi = np.maximum(at_edges[:-1], at_edges[1:])
    inner = np.clip(np.floor(t / step_s).astype(np.int64) - k0, 0, n - 1)
    np.minimum.at(lo, inner, p)
    np.maximum.at(hi, inner, p)
    return _Boxes(k0, lo, hi)


def _sliding(a: FloatArray, width: int, op: Callable[[FloatArray, FloatArray], FloatArray]) -> FloatArray:
    """out[i] = op over a[i : i + width] along axis 0 (len(a) - width + 1 rows), in log2(width) passes."""
    span = 1
    acc = a
    while span * 2 <= width:
        acc = op(acc[:-span], acc[span:])
        span *= 2
    rows = len(a) - width + 1
    return op(acc[:rows], acc[width - span : width - span + rows])


def _smeared(boxes: _Boxes, d: int) -> _Boxes:
    """Box k (from k0 - d to k_end + d) = union of the boxes k - d .. k + d."""
    if d == 0:
        return boxes
    pad_lo = np.full((2 * d, 3), np.inf)
    pad_hi = np.full((2 * d, 3), -np.inf)
    lo = _sliding(np.vstack([pad_lo, boxes.lo, pad_lo]), 2 * d + 1, np.minimum)
    hi = _sliding(np.vstack([pad_hi, boxes.hi, pad_hi]), 2 * d + 1, np.maximum)
    return _Boxes(boxes.k0 - d, lo, hi)


def _near(lo1: FloatArray, hi1: FloatArray, lo2: FloatArray, hi2: FloatArray, sep: Separation) -> BoolArray:
    """Boxes closer than the separation: horizontally < horizontal_m and vertically < vertical_m."""
    gap = np.maximum(np.maximum(lo1 - hi2, lo2 - hi1), 0.0)
    h2 = gap[..., 0] ** 2 + gap[..., 1] ** 2
    near: BoolArray = (h2 < sep.horizontal_m**2) & (gap[..., 2] < sep.vertical_m)
    return near


@dataclass(frozen=True, eq=False)
class _Track:
    intent: Intent
    fine: _Boxes
    smear: _Boxes
    bbox_lo: FloatArray  # (3,)
    bbox_hi: FloatArray  # (3,)


def _track(intent: Intent, sep: Separation, *, smear: bool = True) -> _Track:
    fine = _boxes(intent, sep.step_s)
    return _Track(
        intent,
        fine,
        _smeared(fine, sep.window_steps) if smear else fine,
        intent.xyz_m.min(axis=0),
        intent.xyz_m.max(axis=0),
    )


def _first_conflict(x: _Track, a: _Track, sep: Separation) -> Conflict | None:
    """The earliest conflict of x (fine boxes) with a (smeared for the coarse pass, fine after)."""
    s = a.smear
    k_lo, k_hi = max(x.fine.k0, s.k0), min(x.fine.k_end, s.k_end)
    if k_lo > k_hi:
        return None
    xs = slice(k_lo - x.fine.k0, k_hi - x.fine.k0 + 1)
    ss = slice(k_lo - s.k0, k_hi - s.k0 + 1)
    cand = np.flatnonzero(_near(x.fine.lo[xs], x.fine.hi[xs], s.lo[ss], s.hi[ss], sep)) + k_lo
    if cand.size == 0:
        return None
    d = sep.window_steps
    offsets = np.arange(-d, d + 1, dtype=np.int64)
    kb = cand[:, None] + offsets[None, :]  # (c, 2d + 1) intervals of a
    valid = (kb >= a.fine.k0) & (kb <= a.fine.k_end)
    jb = np.clip(kb - a.fine.k0, 0, len(a.fine.lo) - 1)
    ix = cand - x.fine.k0
    hit = valid & _near(
        x.fine.lo[ix][:, None, :], x.fine.hi[ix][:, None, :], a.fine.lo[jb], a.fine.hi[jb], sep
    )
    rows = np.flatnonzero(hit.any(axis=1))
    if rows.size == 0:
        return None
    row = int(rows[0])
    cols = np.flatnonzero(hit[row])
    col = int(cols[np.argmin(np.abs(offsets[cols]))])
    # Report the closest pair of planned positions within the two conflicting intervals.
    sub = np.linspace(0.0, 1.0, 9)
    xi, ai = x.intent, a.intent
    ta = np.clip((int(cand[row]) + sub) * sep.step_s, xi.depart_s, xi.end_s)
    tb = np.clip((int(kb[row, col]) + sub) * sep.step_s, ai.depart_s, ai.end_s)
    rel = ai.at(tb)[None, :, :] - xi.at(ta)[:, None, :]
    horizontal = np.hypot(rel[..., 0], rel[..., 1])
    vertical = np.abs(rel[..., 2])
    score = np.where(vertical < sep.vertical_m, horizontal, horizontal + 1e9)
    i, j = np.unravel_index(int(np.argmin(score)), score.shape)
    return Conflict(
        xi.intent_id,
        ai.intent_id,
        float(ta[i]),
        float(tb[j] - ta[i]),
        float(horizontal[i, j]),
        float(vertical[i, j]),
    )


def conflict(a: Intent, b: Intent, sep: Separation | None = None) -> Conflict | None:
    """The earliest conflict between two intents (see `Separation`), or None.

    Pure geometry: unlike `IntentBook`, it does not skip two intents of the same vehicle.
    """
    sep = Separation() if sep is None else sep
    tb = _track(b, sep)
    ta = _track(a, sep, smear=False)
    if not _bbox_near(ta, tb.bbox_lo[None, :], tb.bbox_hi[None, :], sep)[0]:
        return None
    return _first_conflict(ta, tb, sep)


def _bbox_near(x: _Track, lo: FloatArray, hi: FloatArray, sep: Separation) -> BoolArray:
    return _near(x.bbox_lo[None, :], x.bbox_hi[None, :], lo, hi, sep)


# --------------------------------------------------------------------------- exact closest approach


def closest_approach(a: Intent, b: Intent, vertical_m: float) -> tuple[float, float]:
    """(horizontal_m, t_s): the least horizontal distance between the two planned positions at the
    same time, over the times when they are less than `vertical_m` apart vertically, and when it
    happens; (inf, nan) if never. Exact (no time buffer, no sampling): both trajectories are linear
    between the merged vertex times, so each piece is a quadratic minimised in closed form."""
    t0, t1 = max(a.depart_s, b.depart_s), min(a.end_s, b.end_s)
    if t0 > t1:
        return math.inf, math.nan
    ts = np.unique(np.concatenate([[t0, t1], a.t_s, b.t_s]))
    ts = ts[(ts >= t0) & (ts <= t1)]
    rel = b.at(ts) - a.at(ts)
    if ts.size == 1:
        if abs(rel[0, 2]) < vertical_m:
            return float(math.hypot(rel[0, 0], rel[0, 1])), float(ts[0])
        return math.inf, math.nan
    r0, r1 = rel[:-1], rel[1:]
    dz0 = r0[:, 2]
    slope = r1[:, 2] - dz0
    flat = slope == 0.0
    # A slope of a few ulps overflows to ±inf: still the right side of [0, 1] once clipped.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ta = (-vertical_m - dz0) / slope
        tb = (vertical_m - dz0) / slope
    # Fraction tau of each piece where |dz| < vertical_m: an open interval; its closure [lo, hi].
    lo = np.where(flat, 0.0, np.maximum(np.minimum(ta, tb), 0.0))
    hi = np.where(flat, 1.0, np.minimum(np.maximum(ta, tb), 1.0))
    ok = np.where(flat, np.abs(dz0) < vertical_m, lo < hi)
    if not ok.any():
        return math.inf, math.nan
    h0 = r0[ok, :2]
    dh = r1[ok, :2] - h0
    lo, hi = lo[ok], hi[ok]
    dd = (dh**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(dd > 0, -(h0 * dh).sum(axis=1) / dd, 0.0)
    tau = np.clip(tau, lo, hi)
    dist = np.hypot(*(h0 + dh * tau[:, None]).T)
    i = int(np.argmin(dist))
    start = ts[:-1][ok][i]
    width = ts[1:][ok][i] - start
    return float(dist[i]), float(start + tau[i] * width)


def min_horizontal_separation_m(a: Intent, b: Intent, vertical_m: float) -> float:
    """Least horizontal distance at the same time while vertically closer than `vertical_m`
    (inf if never); see `closest_approach`."""
    return closest_approach(a, b, vertical_m)[0]


# --------------------------------------------------------------------------- the book


IntentFactory = Callable[[float, float], Intent]
"""(layer_m, depart_s) -> the intent of the sortie on that layer departing then."""


class IntentBook:
    """The accepted intents of a site, and where a new one fits.

    Intents of the same vehicle never conflict with each other (one drone, consecutive sorties).
    `place` finds a conflict-free layer and departure; `add` records an intent as it is (the one
    `place` chose, or a sortie already flying when the service restarts).
    """

    def __init__(self, sep: Separation | None = None, intents: Iterable[Intent] = ()) -> None:
        self.sep = Separation() if sep is None else sep
        self._tracks: dict[str, _Track] = {}
        self._arrays: tuple[list[_Track], IntArray, IntArray, FloatArray, FloatArray] | None = None
        for intent in intents:
            self.add(intent)

    def __len__(self) -> int:
        return len(self._tracks)

    def __contains__(self, intent_id: object) -> bool:
        return intent_id in self._tracks

    @property
    def intents(self) -> tuple[Intent, ...]:
        """Accepted intents, in the order they were added."""
        return tuple(t.intent for t in self._tracks.values())

    def get(self, intent_id: str) -> Intent:
        """The accepted intent with this id; KeyError if none."""
        return self._tracks[intent_id].intent

    def add(self, intent: Intent) -> None:
        """Record an intent without checking it; ValueError if its id is already in the book."""
        if intent.intent_id in self._tracks:
            raise ValueError(f"intent {intent.intent_id!r} is already in the book (use replace)")
        self._tracks[intent.intent_id] = _track(intent, self.sep)
        self._arrays = None

    def remove(self, intent_id: str) -> Intent:
        """Drop an intent (its sortie ended or was cancelled) and return it; KeyError if unknown."""
        try:
            track = self._tracks.pop(intent_id)
        except KeyError:
            raise KeyError(f"no intent {intent_id!r} in the book") from None
        self._arrays = None
        return track.intent

    def replace(self, intent: Intent) -> list[Conflict]:
        """Record a new version of an intent (e.g. a sortie delayed on the ground or re-planned in
        flight), adding it if its id is new. It is recorded whatever it conflicts with (it is what
        the drone will do); the conflicts are returned so the caller can move the others."""
        self._tracks.pop(intent.intent_id, None)
        self.add(intent)
        return self.conflicts_with(intent)

    def expire(self, now_s: float) -> list[Intent]:
        """Drop the intents that can no longer conflict with a sortie departing at `now_s` or later,
        and return them: those that ended before now_s - 2 * time_buffer_s (a drone may land up to
        the buffer late, and a new one may take off up to the buffer early)."""
        limit_s = now_s - self.sep.window_s
        gone = [i for i, t in self._tracks.items() if t.intent.end_s < limit_s]
        return [self.remove(i) for i in gone]

    def _index(self) -> tuple[list[_Track], IntArray, IntArray, FloatArray, FloatArray]:
        if self._arrays is None:
            tracks = list(self._tracks.values())
            k_lo = np.array([t.smear.k0 for t in tracks], dtype=np.int64)
            k_hi = np.array([t.smear.k_end for t in tracks], dtype=np.int64)
            lo = np.array([t.bbox_lo for t in tracks], dtype=np.float64).reshape(-1, 3)
            hi = np.array([t.bbox_hi for t in tracks], dtype=np.float64).reshape(-1, 3)
            self._arrays = (tracks, k_lo, k_hi, lo, hi)
        return self._arrays

    def _conflicts(self, intent: Intent, *, first_only: bool) -> list[Conflict]:
        tracks, k_lo, k_hi, lo, hi = self._index()
        if not tracks:
            return []
        x = _track(intent, self.sep, smear=False)
        maybe = (k_lo <= x.fine.k_end) & (k_hi >= x.fine.k0) & _bbox_near(x, lo, hi, self.sep)
        found: list[Conflict] = []
        for i in np.flatnonzero(maybe):
            other = tracks[int(i)]
            if other.intent.vehicle_id == intent.vehicle_id or other.intent.intent_id == intent.intent_id:
                continue
            hit = _first_conflict(x, other, self.sep)
            if hit is not None:
                found.append(hit)
                if first_only:
                    break
        return found

    def conflicts_with(self, intent: Intent) -> list[Conflict]:
        """The earliest conflict of `intent` with each accepted intent it conflicts with (other
        vehicles only; an accepted intent with the same id is the one it would replace)."""
        return self._conflicts(intent, first_only=False)

    def is_free(self, intent: Intent) -> bool:
        """No conflict with any accepted intent."""
        return not self._conflicts(intent, first_only=True)

    def place(
        self,
        intent_factory: IntentFactory,
        layers_m: Sequence[float],
        depart_s: float,
        *,
        max_delay_s: float = 1800.0,
        step_s: float = 15.0,
        accept: bool = False,
    ) -> Intent:
        """The conflict-free intent (a layer of `layers_m`, a departure depart_s + n * step_s within
        `max_delay_s`) that reaches the drop point first; ties go to the earlier departure, then to
        the layer that comes first (sorted by arrival). NoConflictFreeSlot if there is none.

        Only a query unless `accept` is True: the caller records the chosen intent with `add` once
        it commits to the sortie (with `accept`, place records it, replacing one with the same id).

        A higher layer costs climb and descent time, so a lower layer departing a step later may
        still deliver sooner. The search stops once no later departure can beat the best found; it
        assumes `intent_factory`'s time from departure to arrival does not depend on the departure
        (true of `drone_intent`)."""
        if not layers_m:
            raise ValueError("place needs at least one cruise layer")
        if not (step_s > 0 and max_delay_s >= 0):
            raise ValueError(f"step_s must be > 0 and max_delay_s >= 0, got {step_s}, {max_delay_s}")
        at_depart = {layer: intent_factory(layer, depart_s) for layer in dict.fromkeys(map(float, layers_m))}
        lead_s = {layer: i.arrival_s - depart_s for layer, i in at_depart.items()}
        layers = sorted(at_depart, key=lambda layer: lead_s[layer])
        best: Intent | None = None
        for n in range(math.floor(max_delay_s / step_s + 1e-9) + 1):
            delay_s = n * step_s
            if best is not None and depart_s + delay_s + lead_s[layers[0]] >= best.arrival_s:
                break
            for layer in layers:
                if best is not None and depart_s + delay_s + lead_s[layer] >= best.arrival_s:
                    break
                candidate = at_depart[layer] if n == 0 else intent_factory(layer, depart_s + delay_s)
                if self.is_free(candidate) and (best is None or candidate.arrival_s < best.arrival_s):
                    best = candidate
        if best is None:
            raise NoConflictFreeSlot(depart_s, max_delay_s, layers_m)
        if accept:
            self._tracks.pop(best.intent_id, None)
            self.add(best)
        return best


__all__ = [
    "DEFAULT_HOVER_S",
    "DEFAULT_RELEASE_ALT_M",
    "Conflict",
    "Intent",
    "IntentBook",
    "IntentFactory",
    "NoConflictFreeSlot",
    "Separation",
    "closest_approach",
    "conflict",
    "drone_intent",
    "min_horizontal_separation_m",
]
