"""A site's fleet as simulator vehicles: each on a pad of its own depot, in the site's fleet order
(instance i, so system id i + 1, the way fleetctl numbers the fleet)."""

from __future__ import annotations

from collections.abc import Sequence

from planner.geo import offset_wgs84
from planner.site import Site
from sitl.modes import VehicleKind
from sitl.vehicle import VehicleSpec

#: Once every pad of a depot is taken, further vehicles stand this far east of the last ring.
RING_SPACING_M = 5.0


def fleet_homes(site: Site, vehicle_ids: Sequence[str] | None = None) -> list[tuple[float, float, float]]:
    """(lat, lon, ground AMSL) of each fleet vehicle (all, or those named, in fleet order): pads of
    its depot in turn, then rings 5 m further east."""
    taken: dict[str, int] = {}
    out = []
    for entry in site.fleet:
        depot = site.depots[entry.depot]
        spots = [(p.position.lat_deg, p.position.lon_deg, p.position.alt_amsl_m) for p in depot.pads] or [
            (depot.position.lat_deg, depot.position.lon_deg, depot.position.alt_amsl_m)]
        i = taken.get(entry.depot, 0)
        taken[entry.depot] = i + 1
        if vehicle_ids is not None and entry.vehicle_id not in vehicle_ids:
            continue
        lat, lon, alt = spots[i % len(spots)]
        ring = i // len(spots)
        if ring:
            lat, lon = offset_wgs84(lat, lon, 0.0, RING_SPACING_M * ring)
        out.append((lat, lon, alt))
    return out


def fleet_specs(site: Site, vehicle_ids: Sequence[str] | None = None) -> list[VehicleSpec]:
    """Simulator specs of the site's fleet (or of the named vehicles), quads and rovers with their
    models, instance = place in the site's fleet list (system id = instance + 1)."""
    homes = iter(fleet_homes(site, vehicle_ids))
    specs = []
    for i, entry in enumerate(site.fleet):
        if vehicle_ids is not None and entry.vehicle_id not in vehicle_ids:
            continue
        model = site.vehicle_models.get(entry.model)
        kind: VehicleKind = "quad" if model is None or model.kind == "drone" else "rover"
        specs.append(VehicleSpec(kind, *next(homes), instance=i, model=model))
    return specs
