"""The vehicles' actual tracks, from telemetry, and the safety checks made on them: no track inside
an active no-fly zone, and the least distance between two airborne drones.

The plan is checked before a sortie flies (`planner.deconflict`, the geofence PX4 holds); this is
the check of what really happened, used by every end-to-end test, the demo and scenario runs.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import shapely

from fleetctl.clock import Clock
from planner.airspace import NoFlyZone
from planner.geo import FloatArray, LocalFrame
from vehicles.mavsdk_backend import MavsdkFleet

#: Above this height (m, relative to home) a vehicle counts as airborne for separation.
AIRBORNE_M = 2.0


@dataclass
class Track:
    """One vehicle's samples: clock seconds, local metres, height above home."""

    vehicle_id: str
    kind: str
    t_s: list[float] = field(default_factory=list)
    x_m: list[float] = field(default_factory=list)
    y_m: list[float] = field(default_factory=list)
    alt_m: list[float] = field(default_factory=list)

    def arrays(self) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        return (np.asarray(self.t_s, dtype=np.float64), np.asarray(self.x_m, dtype=np.float64),
                np.asarray(self.y_m, dtype=np.float64), np.asarray(self.alt_m, dtype=np.float64))

    def points_xy_m(self) -> FloatArray:
        return np.column_stack([np.asarray(self.x_m), np.asarray(self.y_m)]) if self.t_s else np.zeros((0, 2))

    @property
    def distance_m(self) -> float:
        xy = self.points_xy_m()
        return float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum()) if len(xy) > 1 else 0.0


class TrackRecorder:
    """Samples every vehicle's position at `rate_hz` of clock time while `run` runs."""

    def __init__(self, fleet: MavsdkFleet, frame: LocalFrame, clock: Clock, *, names: Mapping[int, str],
                 rate_hz: float = 2.0) -> None:
        self._fleet = fleet
        self._frame = frame
        self._clock = clock
        self._names = dict(names)
        self._period_s = 1.0 / rate_hz
        self.tracks: dict[str, Track] = {}

    def sample(self) -> None:
        now_s = self._clock.now().timestamp()
        for sysid, vehicle in self._fleet.vehicles.items():
            state = vehicle.state
            if state.position is None:
                continue
            vehicle_id = self._names.get(sysid, state.vehicle_id)
            track = self.tracks.get(vehicle_id)
            if track is None:
                track = self.tracks[vehicle_id] = Track(vehicle_id, state.kind)
            x, y = self._frame.to_local(state.position.lat_deg, state.position.lon_deg)
            track.t_s.append(now_s)
            track.x_m.append(float(x))
            track.y_m.append(float(y))
            track.alt_m.append(state.position.alt_rel_m)

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self._clock.wall_s(self._period_s))


@dataclass(frozen=True)
class Incursion:
    vehicle_id: str
    zone_id: str
    t_s: float
    x_m: float
    y_m: float
    alt_m: float
    depth_m: float  # how far inside the zone's edge


def zone_incursions(tracks: Iterable[Track], zones: Iterable[NoFlyZone], *, tolerance_m: float = 0.0) -> list[Incursion]:
    """Every sample of a drone inside a zone that was active then, in its altitude band, more than
    `tolerance_m` past the edge (position noise). Robots drive under zones: sidewalks are not
    airspace."""
    found = []
    zones = list(zones)
    for track in tracks:
        if track.kind != "drone" or not track.t_s:
            continue
        t, x, y, alt = track.arrays()
        points = shapely.points(x, y)
        for zone in zones:
            inner = zone.shape.buffer(-tolerance_m) if tolerance_m > 0 else zone.shape
            if inner.is_empty:
                continue
            inside = shapely.contains(inner, points) & (alt >= zone.floor_m) & (alt <= zone.ceiling_m)
            for i in np.flatnonzero(inside):
                if zone.is_active(float(t[i])):
                    depth = float(zone.shape.exterior.distance(shapely.Point(x[i], y[i])))
                    found.append(Incursion(track.vehicle_id, zone.zone_id, float(t[i]), float(x[i]), float(y[i]),
                                           float(alt[i]), depth))
    return found


@dataclass(frozen=True)
class Closest:
    """The least horizontal distance between two airborne drones within `vertical_m` of each other."""

    horizontal_m: float
    vertical_m: float
    t_s: float
    pair: tuple[str, str]


def min_drone_separation(tracks: Iterable[Track], *, vertical_m: float = math.inf, step_s: float = 0.5) -> Closest | None:
    """The closest two airborne drones came (None with fewer than two drones ever airborne together).
    Tracks are resampled on one time grid (linear interpolation between samples)."""
    drones = [t for t in tracks if t.kind == "drone" and len(t.t_s) >= 2]
    best: Closest | None = None
    for i, a in enumerate(drones):
        ta, xa, ya, za = a.arrays()
        for b in drones[i + 1:]:
            tb, xb, yb, zb = b.arrays()
            lo, hi = max(ta[0], tb[0]), min(ta[-1], tb[-1])
            if hi <= lo:
                continue
            grid = np.arange(lo, hi, step_s)
            pa = [np.interp(grid, ta, v) for v in (xa, ya, za)]
            pb = [np.interp(grid, tb, v) for v in (xb, yb, zb)]
            both_up = (pa[2] > AIRBORNE_M) & (pb[2] > AIRBORNE_M) & (np.abs(pa[2] - pb[2]) < vertical_m)
            if not both_up.any():
                continue
            horizontal = np.hypot(pa[0] - pb[0], pa[1] - pb[1])
            k = int(np.argmin(np.where(both_up, horizontal, np.inf)))
            if best is None or horizontal[k] < best.horizontal_m:
                best = Closest(float(horizontal[k]), float(abs(pa[2][k] - pb[2][k])), float(grid[k]),
                               (a.vehicle_id, b.vehicle_id))
    return best
