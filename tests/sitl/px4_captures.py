"""The reference captures of real PX4 as the conformance test reads them (`tests/sitl/data/px4`).

Two profiles per airframe (run "a", whose raw `.tlog` is there too, and the later run "b") and what
the test derives from them: the tolerance of every timed or measured quantity is the spread between
the real runs (`Envelope`), never what the simulator happens to do.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymavlink import mavutil

from sitl.profiles import (
    RUNS,
    ProfileKind,
    ProfileRun,
    has_profile,
    has_tlog,
    load_profile,
    profile_path,
    tlog_path,
)

# Ids pymavlink 2.4.50 cannot decode; the profiles name them (their compid reads 0 there only because
# pymavlink leaves the header of an unknown message empty: the raw frames in the tlogs say 1).
UNDECODED_NAMES = {
    8: "LINK_NODE_STATUS",
    380: "TIME_ESTIMATE_TO_TARGET",
    410: "EVENT",
    411: "CURRENT_EVENT_SEQUENCE",
}
# PX4 SITL at speed factor 1 kept its lockstep clock at 0.993 of the wall clock (shared px4-notes,
# section 6); the captures' times are wall seconds, the simulator's are simulated seconds.
PX4_SIM_PER_WALL = 0.993
# The quad's mission and RTL durations over three runs per airframe (the data README,
# "Reproducibility"): wider than the two profiles alone.
README_DURATIONS_S = {("quad", "flight"): (79.0, 83.0), ("quad", "rtl"): (63.0, 70.0)}
# PX4 reports its navigator's verdict on a new mission 0.301 s after the upload's MISSION_ACK: the
# MISSION_CURRENT PX4 sends the moment mission_result changes, quad.tlog 105.423 s and rover.tlog
# 102.345 s (the first 1 Hz reports after other uploads came 0.34-0.52 s after the ACK).
MISSION_VERDICT_S = 0.301


@dataclass(frozen=True)
class Envelope:
    """Where a quantity must lie, from its values in the real runs: their range widened on both sides by
    its own width (two or three runs under-sample the spread), or by `floor` (the resolution of the
    measurement) when that is larger. `time_s` marks wall-clock times of PX4, scaled to its clock."""

    lo: float
    hi: float

    @classmethod
    def of(cls, values: Iterable[float], *, floor: float = 0.0, time_s: bool = False) -> Envelope:
        vals = [float(v) for v in values]
        lo, hi = min(vals), max(vals)
        if time_s:
            lo *= PX4_SIM_PER_WALL
        width = max(hi - lo, floor)
        return cls(lo - width, hi + width)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.lo <= value <= self.hi

    def __repr__(self) -> str:
        return f"[{self.lo:.3g}, {self.hi:.3g}]"


@dataclass
class Reference:
    """One airframe's captures: the profiles of both runs and the first run's tlog."""

    kind: ProfileKind
    runs: dict[ProfileRun, dict[str, Any]]
    tlog: TlogSummary

    @property
    def a(self) -> dict[str, Any]:
        return self.runs["a"]

    def section(self, name: str) -> dict[ProfileRun, dict[str, Any]]:
        return {run: prof[name] for run, prof in self.runs.items()}

    def probes(self, section: str, name: str) -> list[dict[str, Any]]:
        """The probe `name` of `section` in every run that has it (the _b runs added some)."""
        return [prof[section][name] for prof in self.runs.values() if name in prof[section]]

    def probe_names(self, section: str) -> list[str]:
        """Probe names in capture order, the later run's extra probes in their place."""
        names: list[str] = []
        for prof in sorted(self.runs.values(), key=lambda p: -len(p[section])):
            for name in prof[section]:
                if name not in names:
                    names.append(name)
        return names

    def home_alt_m(self, run: ProfileRun) -> float:
        return float(self.runs[run]["passive"]["samples"]["HOME_POSITION"]["altitude"]) / 1000.0


@functools.cache
def _load(kind: ProfileKind) -> Reference | None:
    if not all(has_profile(kind, run) for run in RUNS) or not has_tlog(kind):
        return None
    runs = {run: load_profile(kind, run) for run in RUNS}
    return Reference(kind, runs, summarize_tlog(kind, runs["a"]))


def reference(kind: ProfileKind) -> Reference:
    ref = _load(kind)
    if ref is None:
        pytest.skip(f"reference captures missing in {profile_path(kind).parent} (see the README there)")
    return ref


# ------------------------------------------------------------------------------------------ tlog


@dataclass
class MissionReport:
    """What PX4 said in MISSION_CURRENT after one upload's MISSION_ACK: (seconds after the ACK, seq,
    total, mission_state) for every report within `TlogSummary.REPORT_WINDOW_S`."""

    count: int
    mission_type: int
    ack: int | None
    reports: list[tuple[float, int, int, int]]


@dataclass
class TlogSummary:
    """The run-"a" tlog, reduced to what the test compares: the passive window (rates, raw compids,
    field values that never changed) and PX4's MISSION_CURRENT after each upload."""

    # From PX4's verdict to a little over one period of the 1 Hz MISSION_CURRENT later, so that one of
    # those reports falls in the window whatever its phase (they came 1.30-1.34 s after some ACKs).
    REPORT_WINDOW_S = 1.35

    window_s: float
    counts: Counter[str] = field(default_factory=Counter)
    compids: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    constants: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: list[MissionReport] = field(default_factory=list)
    arm_yaws_deg: list[float] = field(default_factory=list)  # heading at each arming by the ground

    def rate_hz(self, name: str) -> float:
        return self.counts[name] / self.window_s


def _name(msg: Any, msg_id: int) -> str:
    kind = str(msg.get_type())
    return UNDECODED_NAMES.get(msg_id, kind) if kind.startswith("UNKNOWN") else kind


def summarize_tlog(kind: ProfileKind, profile: dict[str, Any]) -> TlogSummary:
    w0, w1 = profile["passive"]["window_wall_us"]
    summary = TlogSummary(window_s=(w1 - w0) / 1e6)
    values: dict[str, dict[str, set[Any]]] = defaultdict(lambda: defaultdict(set))
    pending: MissionReport | None = None
    ack_t: float | None = None
    yaw_deg = math.nan
    conn = mavutil.mavlink_connection(str(tlog_path(kind)), dialect="development")
    try:
        while (msg := conn.recv_match()) is not None:
            t_us = msg._timestamp * 1e6
            buf = msg.get_msgbuf()
            if len(buf) < 10 or buf[0] != 0xFD:
                continue
            sysid, compid = buf[5], buf[6]
            msg_id = buf[7] | (buf[8] << 8) | (buf[9] << 16)
            name = _name(msg, msg_id)
            if sysid == 1 and name == "ATTITUDE":
                yaw_deg = math.degrees(msg.yaw) % 360.0
            if sysid == 255 and name == "COMMAND_LONG" and msg.command == 400 and msg.param1 == 1:
                summary.arm_yaws_deg.append(yaw_deg)
            if sysid == 255 and name == "MISSION_COUNT":  # the ground starts an upload
                pending = MissionReport(int(msg.count), int(msg.mission_type), None, [])
                summary.uploads.append(pending)
                ack_t = None
            if sysid != 1:
                continue
            if pending is not None and name == "MISSION_ACK" and pending.ack is None:
                pending.ack, ack_t = int(msg.type), msg._timestamp
            elif pending is not None and ack_t is not None and name == "MISSION_CURRENT":
                dt = msg._timestamp - ack_t
                if dt <= TlogSummary.REPORT_WINDOW_S:
                    pending.reports.append((dt, msg.seq, msg.total, msg.mission_state))
            if not w0 <= t_us <= w1:
                continue
            summary.counts[name] += 1
            summary.compids[name].add(compid)
            if not name.startswith("UNKNOWN") and name not in UNDECODED_NAMES.values():
                for fname in msg.get_fieldnames():
                    v = getattr(msg, fname)
                    values[name][fname].add(tuple(v) if isinstance(v, list) else v)
    finally:
        conn.close()
    summary.constants = {
        name: {f: next(iter(vs)) for f, vs in fields.items() if len(vs) == 1} for name, fields in values.items()
    }
    return summary


# --------------------------------------------------------------------------------- comparisons


def plain_texts(texts: Iterable[str]) -> list[str]:
    """Texts as the profiles hold them: trailing tab stripped, the ULog logger line dropped."""
    return [t.rstrip("\t") for t in texts if not t.startswith("[logger]")]


def rehome_texts(texts: Sequence[str], alt_shift_m: float) -> list[str]:
    """A run's texts as they would read at a home `alt_shift_m` higher: the AMSL altitude PX4 prints
    in "RTL: start return at N m" (the _b runs had their home at 15 m AMSL, the simulator at 488 m)."""
    def shift(m: re.Match[str]) -> str:
        return f"{m.group(1)}{round(int(m.group(2)) + alt_shift_m)}{m.group(3)}"

    return [re.sub(r"(start return at )(-?\d+)( m)", shift, t) for t in texts]


def texts_match(mine: Sequence[str], theirs: Sequence[str]) -> bool:
    """Equal texts, except that numbers may differ by one (PX4 rounds altitudes from a noisy SIH home)."""
    if len(mine) != len(theirs):
        return False
    for a, b in zip(mine, theirs, strict=True):
        if re.sub(r"\d+", "#", a) != re.sub(r"\d+", "#", b):
            return False
        na, nb = re.findall(r"\d+", a), re.findall(r"\d+", b)
        if any(abs(int(x) - int(y)) > 1 for x, y in zip(na, nb, strict=True)):
            return False
    return True


def dist_m(a: Sequence[float], b: Sequence[float]) -> float:
    return math.dist(a, b)


def path_distance_m(point: Sequence[float], path: Sequence[Sequence[float]]) -> float:
    """Distance from `point` to the polyline through `path` (same dimensions)."""
    best = math.inf
    for p, q in itertools.pairwise(path):
        seg = [b - a for a, b in zip(p, q, strict=True)]
        rel = [c - a for a, c in zip(p, point, strict=True)]
        seg2 = sum(s * s for s in seg)
        u = 0.0 if seg2 == 0 else max(0.0, min(1.0, sum(s * r for s, r in zip(seg, rel, strict=True)) / seg2))
        best = min(best, dist_m(point, [a + u * s for a, s in zip(p, seg, strict=True)]))
    return best if path[1:] else dist_m(point, path[0])


def interpolate(track: Sequence[Sequence[float]], t: float) -> list[float]:
    """The track row (t first) linearly interpolated at time `t`, clamped to its ends."""
    if t <= track[0][0]:
        return list(track[0])
    for p, q in itertools.pairwise(track):
        if p[0] <= t <= q[0]:
            u = 0.0 if q[0] == p[0] else (t - p[0]) / (q[0] - p[0])
            return [a + u * (b - a) for a, b in zip(p, q, strict=True)]
    return list(track[-1])
