"""The synthetic order stream: what a day of a shop's orders looks like, seeded, from the site's
real drop points.

- Arrivals: a Poisson process at `per_hour` over `hours` of simulated time (exponential gaps).
- Parcels: when the fleet has both kinds, a quarter are heavy (3-9 kg, medium size: robots only,
  to drop points robots reach within ROBOT_RADIUS_M of a depot with robots: a sidewalk robot serves
  its neighbourhood); the rest light (0.2-2.3 kg, small), to drop points drones reach (where robots
  may go too, dispatch chooses). A drone-only fleet gets light parcels only; a robot-only fleet half
  light, half heavy, all to robot drop points near its depots.
- Hand-off: left to the service (the model's default, a locker), except at drop points only drones
  admit, where a drone releases the parcel (drone_release).
- Windows: open when the order is placed and close 30-90 min later (express 30-45 min, medical
  30 min); 10 % express, 2 % medical.

Payloads have the shape of `fleetctl.orders.model.Order`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleetctl.orders.model import utc_iso
from planner.site import DropPoint, Site

HEAVY_SHARE = 0.25
LIGHT_KG = (0.2, 2.3)
HEAVY_KG = (3.0, 9.0)
EXPRESS_SHARE = 0.10
MEDICAL_SHARE = 0.02
WINDOW_MIN = {"standard": (30.0, 90.0), "express": (30.0, 45.0), "medical": (30.0, 30.0)}
#: Robot parcels go to drop points at most this far from a depot with robots (straight line; some
#: 10 min of sidewalk at 1.5 m/s).
ROBOT_RADIUS_M = 700.0


@dataclass(frozen=True)
class PlannedOrder:
    order_id: str
    at_s: float  # simulated seconds after the stream starts
    dropoff: str
    weight_kg: float
    size: str
    priority: str
    window_s: float
    handoff: str | None = None
    handoff_pin: str | None = None  # with handoff "pin": the PIN the shop gave the recipient

    def payload(self, site_id: str, now: datetime) -> dict[str, Any]:
        """The order as the shop sends it at `now` (its window opens then)."""
        body: dict[str, Any] = {
            "order_id": self.order_id, "site": site_id, "dropoff": self.dropoff, "weight_kg": self.weight_kg,
            "size": self.size, "priority": self.priority,
            "window": {"earliest": utc_iso(now), "latest": utc_iso(now + timedelta(seconds=self.window_s))},
        }
        if self.handoff is not None:
            body["handoff"] = self.handoff
        if self.handoff_pin is not None:
            body["handoff_pin"] = self.handoff_pin
        return body


def order_stream(site: Site, *, hours: float, per_hour: float, seed: int, drones: bool, robots: bool,
                 robot_depots: frozenset[str] = frozenset(), prefix: str = "demo") -> list[PlannedOrder]:
    """The orders of one run, in arrival order (the same for the same arguments)."""
    rng = random.Random(seed)
    points = sorted(site.drop_points.values(), key=lambda d: d.name)
    depots = [site.depots[name].xy_m for name in sorted(robot_depots)] or [d.xy_m for d in site.depots.values()]
    near_robots = [d for d in points
                   if robots and d.robot_ok and min(math.dist(d.xy_m, xy) for xy in depots) <= ROBOT_RADIUS_M]
    light = [d for d in points if d.drone_ok] if drones else near_robots
    heavy = near_robots
    heavy_share = HEAVY_SHARE if drones else 0.5
    if not light or per_hour <= 0.0:
        return []
    orders: list[PlannedOrder] = []
    t = 0.0
    end_s = hours * 3600.0
    rate_per_s = per_hour / 3600.0
    while True:
        t += rng.expovariate(rate_per_s)
        if t >= end_s:
            return orders
        is_heavy = bool(heavy) and rng.random() < heavy_share
        point: DropPoint = rng.choice(heavy if is_heavy else light)
        low, high = HEAVY_KG if is_heavy else LIGHT_KG
        weight = round(rng.uniform(low, high), 1)
        draw = rng.random()
        priority = "medical" if draw < MEDICAL_SHARE else "express" if draw < MEDICAL_SHARE + EXPRESS_SHARE \
            else "standard"
        w_low, w_high = WINDOW_MIN[priority]
        window_s = round(rng.uniform(w_low, w_high) * 60.0)
        handoff = "drone_release" if point.drone_ok and not (robots and point.robot_ok) and not is_heavy else None
        orders.append(PlannedOrder(f"{prefix}-{len(orders) + 1:04d}", t, point.name, weight,
                                   "medium" if is_heavy else "small", priority, window_s, handoff))
