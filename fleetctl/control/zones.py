"""The no-fly zones as the operator sees them: the site's own plus those added on the control topics,
published retained on `fleet/<site>/zones` whenever the set in force changes (a zone added, lifted,
or its time window opening or closing), and read from GeoJSON.

The planner keeps its own copy (the assignment rule's airspace); this book only mirrors what went
through `Operator.add_zone`/`remove_zone` successfully, so the two agree.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import shapely

from fleetctl.bus import Bus
from fleetctl.bus.payloads import Circle, ZoneInfo, ZonesMessage
from fleetctl.clock import Clock
from fleetctl.errors import BusError
from planner.airspace import NoFlyZone
from planner.site import Site

log = logging.getLogger(__name__)
#: A window that opens or closes further away than this is looked at again then anyway.
_RECHECK_MAX_S = 3600.0
#: Wall seconds between attempts while the broker is away.
_RETRY_S = 5.0


class ZoneBook:
    def __init__(self, site: Site, bus: Bus, clock: Clock) -> None:
        self._site = site
        self._bus = bus
        self._clock = clock
        self.zones: dict[str, NoFlyZone] = {z.zone_id: z for z in site.zones}
        self._changed = asyncio.Event()
        self._added = 0

    def next_id(self) -> str:
        """A fresh id for an operator's zone (op-1, op-2, ...)."""
        while True:
            self._added += 1
            zone_id = f"op-{self._added}"
            if zone_id not in self.zones:
                return zone_id

    def added(self, zone: NoFlyZone) -> None:
        self.zones[zone.zone_id] = zone
        self._changed.set()

    def removed(self, zone_id: str) -> None:
        self.zones.pop(zone_id, None)
        self._changed.set()

    def info(self, zone: NoFlyZone) -> ZoneInfo:
        frame = self._site.frame
        circle = None
        polygon = None
        if zone.circle is not None:
            x_m, y_m, radius_m = zone.circle
            lat, lon = frame.to_wgs84(x_m, y_m)
            circle = Circle(lat_deg=lat, lon_deg=lon, radius_m=radius_m)
        else:
            ring = frame.points_to_wgs84(np.asarray(zone.shape.exterior.coords, dtype=np.float64))
            polygon = [[[round(float(lon), 7), round(float(lat), 7)] for lat, lon in ring]]
        return ZoneInfo(zone_id=zone.zone_id, reason=zone.reason, polygon=polygon, circle=circle,
                        floor_m=zone.floor_m, ceiling_m=None if math.isinf(zone.ceiling_m) else zone.ceiling_m,
                        active_from=_utc(zone.active_from_s), active_until=_utc(zone.active_until_s))

    def current(self) -> list[NoFlyZone]:
        """Zones in force now or later (not those whose window has closed)."""
        now_s = self._clock.now().timestamp()
        return [z for z in self.zones.values() if z.active_until_s is None or z.active_until_s > now_s]

    def message(self) -> ZonesMessage:
        return ZonesMessage(at=self._clock.now(), zones=[self.info(z) for z in self.current()])

    async def run(self) -> None:
        """Publish the set now, and again whenever it changes or a window opens or closes."""
        while True:
            self._changed.clear()
            wait_s = self._next_boundary_s()
            try:
                await self._bus.publish(self._bus.topics.zones, self.message(), retain=True)
            except BusError as e:  # the broker is away: the set goes out once it is back
                log.warning("zones: could not publish the zones in force: %s", e)
                self._changed.set()
                await asyncio.sleep(_RETRY_S)
                continue
            try:
                async with asyncio.timeout(self._clock.wall_s(wait_s)):
                    await self._changed.wait()
            except TimeoutError:
                pass

    def _next_boundary_s(self) -> float:
        now_s = self._clock.now().timestamp()
        edges = [t for z in self.zones.values() for t in (z.active_from_s, z.active_until_s)
                 if t is not None and t > now_s]
        return min([_RECHECK_MAX_S, *(t - now_s + 0.001 for t in edges)])


def _utc(epoch_s: float | None) -> datetime | None:
    return None if epoch_s is None else datetime.fromtimestamp(epoch_s, UTC)


def zones_from_geojson(site: Site, data: Mapping[str, Any], *, default_id: str | None, next_id: Callable[[], str],
                       common: Mapping[str, Any]) -> list[NoFlyZone]:
    """NoFlyZones from a Feature, a FeatureCollection, or a bare Polygon / Point geometry (a Point
    needs `radius_m` in its properties). Properties `id`, `reason`, `floor_m`, `ceiling_m` override
    `common` (the command's options: reason, floor_m, ceiling_m, active_from_s, active_until_s).
    ValueError, saying which feature, for anything else."""
    kind = data.get("type")
    features: Iterable[Any]
    if kind == "FeatureCollection":
        features = data.get("features") or []
    elif kind == "Feature":
        features = [data]
    elif kind in ("Polygon", "Point"):
        features = [{"type": "Feature", "properties": {}, "geometry": data}]
    else:
        raise ValueError(f"GeoJSON of type {kind!r}: give a Feature, a FeatureCollection or a Polygon")
    features = list(features)
    if not features:
        raise ValueError("the GeoJSON has no features")
    zones = []
    for i, feature in enumerate(features):
        label = f"feature #{i + 1}"
        if not isinstance(feature, Mapping) or not isinstance(feature.get("geometry"), Mapping):
            raise ValueError(f"{label}: not a GeoJSON Feature with a geometry")
        props = feature.get("properties") or {}
        geometry = feature["geometry"]
        zone_id = str(props.get("id") or (default_id if len(features) == 1 and default_id else next_id()))
        kw = dict(common)
        for key in ("floor_m", "ceiling_m"):
            if props.get(key) is not None:
                kw[key] = float(props[key])
        reason = str(props.get("reason") or kw.pop("reason", "operator"))
        kw.pop("reason", None)
        try:
            if geometry.get("type") == "Polygon":
                rings = geometry.get("coordinates") or []
                lon_lat = np.asarray(rings[0], dtype=np.float64)[:, :2]
                xy = site.frame.points_to_local(lon_lat[:, ::-1])
                holes = [site.frame.points_to_local(np.asarray(r, dtype=np.float64)[:, 1::-1]) for r in rings[1:]]
                zones.append(NoFlyZone(zone_id, reason, shapely.Polygon(xy, holes), **kw))
            elif geometry.get("type") == "Point" and props.get("radius_m") is not None:
                lon, lat = (float(v) for v in geometry["coordinates"][:2])
                x_m, y_m = site.frame.to_local(lat, lon)
                zones.append(NoFlyZone.make_circle(zone_id, reason, x_m, y_m, float(props["radius_m"]), **kw))
            else:
                raise ValueError(f"a zone must be a Polygon, or a Point with a radius_m property, "
                                 f"not {geometry.get('type')!r}")
        except (TypeError, IndexError, KeyError) as e:
            raise ValueError(f"{label}: malformed coordinates ({e})") from None
        except ValueError as e:
            raise ValueError(f"{label}: {e}") from None
    return zones
