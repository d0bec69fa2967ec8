"""The no-fly zones added while a run went on, read back from its zone events (the live bus's or the
store's: both carry the zone's shape in the site's frame), for the map and the incursion check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import shapely

from planner.airspace import NoFlyZone


class ZoneEvent(Protocol):
    """What a zone event has, on the bus (EventMessage) as in the store (EventRecord)."""

    @property
    def entity(self) -> Any: ...
    @property
    def entity_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


def zones_from_events(events: Iterable[ZoneEvent]) -> list[NoFlyZone]:
    """The no-fly zones operators added during a run, each active from its zone.added event until its
    zone.removed event (if any)."""
    added: dict[str, tuple[ZoneEvent, float | None]] = {}
    for event in events:
        if event.entity != "zone":
            continue
        if event.kind == "zone.added" and event.data.get("shape_xy_m"):
            added[event.entity_id] = (event, None)
        elif event.kind == "zone.removed" and event.entity_id in added:
            added[event.entity_id] = (added[event.entity_id][0], event.at.timestamp())
    zones = []
    for zone_id, (event, until_s) in added.items():
        ceiling = event.data.get("ceiling_m")
        zones.append(NoFlyZone(zone_id, str(event.data.get("reason") or ""), shapely.Polygon(event.data["shape_xy_m"]),
                               floor_m=float(event.data.get("floor_m") or 0.0),
                               ceiling_m=float("inf") if ceiling is None else float(ceiling),
                               active_from_s=event.at.timestamp(), active_until_s=until_s))
    return zones
