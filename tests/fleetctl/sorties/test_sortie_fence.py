"""The geofence uploaded with a sortie: it fits PX4's vertex budget and never reaches the path
(a fence stricter than the path makes PX4 refuse the mission: "Geofence violation for waypoint 1",
seen for drop points ~1 km out, where the detailed area outline had forced heavy simplification)."""

from __future__ import annotations

import numpy as np
import shapely
from service_harness import helsinki

from fleetctl.sorties import VehicleSlot, fence_for, plan_sortie
from fleetctl.sorties.plan import MAX_FENCE_ITEMS
from planner.errors import PlanningError
from planner.flight import FlightPlanner
from vehicles.base import ExclusionCircle, ExclusionPolygon, InclusionPolygon


def test_every_drone_fence_fits_and_keeps_clear_of_its_path() -> None:
    site = helsinki()
    flight = FlightPlanner(site.airspace, max_alt_m=max(site.cruise_layers_m))
    model = site.vehicle_model("quad-x4")
    checked = 0
    for depot_name, depot in site.depots.items():
        for name in sorted(site.drop_points)[::4]:
            drop = site.drop_points[name]
            if not drop.drone_ok:
                continue
            slot = VehicleSlot("q", model, depot_name, depot.pads[0].xy_m, 100.0)
            try:
                plan = plan_sortie(site, flight, "o", drop.xy_m, slot, 1.0)
            except PlanningError:
                continue
            fence = fence_for(site, site.airspace, plan)
            path = shapely.LineString(site.frame.points_to_local(np.asarray(plan.out_wgs84)))
            used = 0
            for item in fence:
                if isinstance(item, ExclusionCircle):
                    used += 1
                    continue
                assert isinstance(item, InclusionPolygon | ExclusionPolygon)
                used += len(item.vertices)
                shape = shapely.Polygon(site.frame.points_to_local(np.asarray(item.vertices)))
                if isinstance(item, InclusionPolygon):
                    assert shape.contains(path), (depot_name, name)
                else:
                    assert not shape.intersects(path), (depot_name, name)
            assert used <= MAX_FENCE_ITEMS
            checked += 1
    assert checked > 80
