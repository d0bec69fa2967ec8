"""The planner's exceptions.

    PlanningError
     ├── SiteError                  a site folder is malformed (names the file and the feature)
     ├── OutsideOperatingArea       a point lies outside the site's operating area
     ├── InsideNoFlyZone            a start or goal lies inside an active zone (names the zone)
     │    └── DropoffInsideZone     a sortie in flight: its drop point is now inside a zone
     ├── NoRoute                    no path or route exists between two points
     ├── UnknownPlace               a depot, drop point or vehicle model name the site lacks
     ├── EnergyInfeasible           a leg needs more energy than the battery holds above reserve
     ├── PayloadTooHeavy            a parcel is heavier than the vehicle model may carry
     ├── WindLimitExceeded          the wind is above the vehicle's limit or stops it making headway
     ├── OsmImportError             an OSM extract could not be turned into a site (names the source)
     ├── UnknownZone                no no-fly zone has the given id
     └── NoConflictFreeSlot         no cruise layer or departure keeps a drone clear of the others
"""

from __future__ import annotations

from collections.abc import Sequence


class PlanningError(Exception):
    """Base of every error raised by `planner`."""


class SiteError(PlanningError):
    """A site folder could not be loaded: `path` is the file, `feature` the offending part."""

    def __init__(self, path: str, feature: str, message: str) -> None:
        self.path = path
        self.feature = feature
        self.message = message
        super().__init__(f"{path}: {feature}: {message}")


class OutsideOperatingArea(PlanningError):
    def __init__(self, what: str, x_m: float, y_m: float) -> None:
        self.what = what
        self.x_m = x_m
        self.y_m = y_m
        super().__init__(f"{what} at ({x_m:.1f} m E, {y_m:.1f} m N) is outside the operating area")


class InsideNoFlyZone(PlanningError):
    def __init__(self, what: str, zone_id: str, reason: str) -> None:
        self.what = what
        self.zone_id = zone_id
        self.reason = reason
        super().__init__(f"{what} is inside no-fly zone {zone_id!r} ({reason})")


class DropoffInsideZone(InsideNoFlyZone):
    """A sortie in flight cannot deliver: its drop point now lies inside (or within the safety
    buffer of) a zone; the parcel must come home."""

    def __init__(self, zone_id: str, reason: str) -> None:
        super().__init__("the drop point", zone_id, reason)


class NoRoute(PlanningError):
    """No path or route connects the two points."""


class UnknownPlace(PlanningError):
    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        shown = ", ".join(sorted(known)[:12])
        super().__init__(f"unknown {kind} {name!r}; known: {shown}")


class EnergyInfeasible(PlanningError):
    def __init__(self, needed_wh: float, available_wh: float, reserve_wh: float) -> None:
        self.needed_wh = needed_wh
        self.available_wh = available_wh
        self.reserve_wh = reserve_wh
        super().__init__(
            f"needs {needed_wh:.1f} Wh but only {available_wh - reserve_wh:.1f} Wh are usable "
            f"({available_wh:.1f} Wh minus {reserve_wh:.1f} Wh reserve)"
        )


class WindLimitExceeded(PlanningError):
    """The wind is stronger than `limit_m_s` allows, or so strong the vehicle cannot make headway."""

    def __init__(self, wind_m_s: float, limit_m_s: float, why: str) -> None:
        self.wind_m_s = wind_m_s
        self.limit_m_s = limit_m_s
        self.why = why
        super().__init__(f"wind {wind_m_s:.1f} m/s (limit {limit_m_s:.1f} m/s): {why}")


class OsmImportError(PlanningError):
    """Building a site from an OSM extract failed: `source` is the extract, `message` why."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.message = message
        super().__init__(f"{source}: {message}")


class UnknownZone(PlanningError):
    """No no-fly zone has this id (e.g. removing a zone that was never added)."""

    def __init__(self, zone_id: str) -> None:
        self.zone_id = zone_id
        super().__init__(f"no no-fly zone with id {zone_id!r}")


class PayloadTooHeavy(PlanningError):
    def __init__(self, model: str, payload_kg: float, max_payload_kg: float) -> None:
        self.model = model
        self.payload_kg = payload_kg
        self.max_payload_kg = max_payload_kg
        super().__init__(f"payload {payload_kg:g} kg exceeds {model!r} limit of {max_payload_kg:g} kg")


class NoConflictFreeSlot(PlanningError):
    """No cruise layer and no departure within `max_delay_s` of `depart_s` is free of conflicts."""

    def __init__(self, depart_s: float, max_delay_s: float, layers_m: Sequence[float]) -> None:
        self.depart_s = depart_s
        self.max_delay_s = max_delay_s
        self.layers_m = tuple(layers_m)
        shown = ", ".join(f"{layer:g}" for layer in self.layers_m)
        super().__init__(
            f"no conflict-free slot on layers [{shown}] m departing within {max_delay_s:g} s of {depart_s:.1f}"
        )
