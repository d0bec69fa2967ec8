"""The control commands: their wire names, argument models, and whether they change anything.

One table (`COMMANDS`) is the contract between the console and the service: the service validates a
request's `args` with the command's model (a `bad_args` error otherwise), checks the client's role
against `mutates`, and runs the handler of the same name (`fleetctl.control.handlers`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import Handoff, OrderId, Priority, SizeClass, TimeWindow


class ErrorCode(enum.StrEnum):
    """The `code` of a failed ControlResponse."""

    FORBIDDEN = "forbidden"  # the client's role may not run this command
    UNKNOWN_COMMAND = "unknown_command"
    BAD_ARGS = "bad_args"  # the arguments do not match the command's model
    EXPIRED = "expired"  # arrived after its expires_at: not carried out
    UNKNOWN_VEHICLE = "unknown_vehicle"
    UNKNOWN_ORDER = "unknown_order"
    UNKNOWN_ZONE = "unknown_zone"
    ILLEGAL_TRANSITION = "illegal_transition"
    ORDER_REJECTED = "order_rejected"  # intake refused the order (reason in the result)
    CONFLICT = "conflict"  # an id already taken (order with other content, zone)
    VEHICLE_ERROR = "vehicle_error"  # the vehicle refused, did not answer, or is not linked
    PLANNING_ERROR = "planning_error"
    PARTIAL = "partial"  # a fleet-wide command some vehicles refused (the result says which)
    UNAVAILABLE = "unavailable"  # the service cannot do it now (broker, store)
    INTERNAL = "internal"  # a bug: logged by the service


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NoArgs(_Args):
    pass


class VehicleArgs(_Args):
    vehicle_id: str = Field(min_length=1, max_length=64)


class GroundArgs(VehicleArgs):
    reason: str = Field(default="", max_length=200)


class OrderArgs(_Args):
    order_id: OrderId


class CancelArgs(OrderArgs):
    reason: str = Field(default="cancelled by the operator", max_length=200)


class PinArgs(OrderArgs):
    vehicle_id: str | None = Field(default=None, max_length=64, description="None: unpin")


class ListOrdersArgs(_Args):
    states: list[OrderState] = Field(default_factory=list, description="empty: every state")
    limit: int = Field(default=200, ge=1, le=5000)


class EventsArgs(_Args):
    limit: int = Field(default=50, ge=1, le=1000)


class AddOrderArgs(_Args):
    """An order as the console gives it; the service fills `site` and, without `window`, a window from
    its own clock (now .. now + within_min), so a console on another machine, or a simulation's scaled
    clock, never sends a window already past."""

    order_id: OrderId
    dropoff: str | dict[str, float]
    weight_kg: float = Field(default=1.0, gt=0.0, le=1000.0)
    window: TimeWindow | None = None
    within_min: float = Field(default=120.0, gt=0.0, le=7 * 24 * 60)
    pickup_depot: str | None = None
    size: SizeClass = SizeClass.SMALL
    priority: Priority = Priority.STANDARD
    handoff: Handoff = Handoff.LOCKER
    recipient_ref: str | None = Field(default=None, max_length=128)
    handoff_pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$", description="with handoff pin")


class ZoneWindow(_Args):
    reason: str = Field(default="operator", max_length=200)
    floor_m: float = Field(default=0.0, ge=0.0)
    ceiling_m: float | None = Field(default=None, gt=0.0, description="None: no ceiling")
    active_from: str | None = Field(default=None, description="ISO 8601 time or +DURATION (e.g. +15m)")
    until: str | None = Field(default=None, description="ISO 8601 time or DURATION from now (e.g. 2h, 30m)")


class CircleZoneArgs(ZoneWindow):
    zone_id: str | None = Field(default=None, min_length=1, max_length=64, description="default: op-<n>")
    lat_deg: float = Field(ge=-90.0, le=90.0)
    lon_deg: float = Field(ge=-180.0, le=180.0)
    radius_m: float = Field(gt=0.0, le=50_000.0)


class GeojsonZoneArgs(ZoneWindow):
    zone_id: str | None = Field(default=None, min_length=1, max_length=64,
                                description="for a single feature without an id property")
    geojson: dict[str, Any] = Field(description="a Feature, a FeatureCollection, or a Polygon geometry")


class ZoneIdArgs(_Args):
    zone_id: str = Field(min_length=1, max_length=64)


@dataclass(frozen=True)
class Command:
    name: str
    args: type[_Args]
    mutates: bool
    help: str


def _c(name: str, args: type[_Args], mutates: bool, help: str) -> tuple[str, Command]:
    return name, Command(name, args, mutates, help)


COMMANDS: Final[dict[str, Command]] = dict([
    _c("whoami", NoArgs, False, "the client's name and role"),
    _c("list_vehicles", NoArgs, False, "every vehicle: state, battery, sortie, grounded, why not free"),
    _c("list_orders", ListOrdersArgs, False, "orders from the store, by state"),
    _c("show_order", OrderArgs, False, "one order and its events"),
    _c("list_zones", NoArgs, False, "the no-fly zones the service knows (site and operator's)"),
    _c("kpi", NoArgs, False, "orders by state, on-time rate, delivery times, fleet use"),
    _c("recent_events", EventsArgs, False, "the last events of the log"),
    _c("add_order", AddOrderArgs, True, "a new order, through intake (validation, idempotency)"),
    _c("cancel_order", CancelArgs, True, "cancel an order (recalls its vehicle when on its way)"),
    _c("pin_order", PinArgs, True, "only this vehicle may deliver the order (no vehicle: unpin)"),
    _c("rtl_vehicle", VehicleArgs, True, "return to launch"),
    _c("land_vehicle", VehicleArgs, True, "land where it is"),
    _c("pause_vehicle", VehicleArgs, True, "hold position"),
    _c("resume_vehicle", VehicleArgs, True, "carry on with the mission"),
    _c("ground_vehicle", GroundArgs, True, "dispatch gives it nothing new"),
    _c("unground_vehicle", VehicleArgs, True, "dispatch may use it again"),
    _c("rtl_fleet", NoArgs, True, "every vehicle under way returns to launch"),
    _c("land_fleet", NoArgs, True, "every vehicle under way lands where it is"),
    _c("pause_fleet", NoArgs, True, "every vehicle under way holds position"),
    _c("add_zone_circle", CircleZoneArgs, True, "a circular no-fly zone"),
    _c("add_zone_geojson", GeojsonZoneArgs, True, "no-fly zones from GeoJSON"),
    _c("remove_zone", ZoneIdArgs, True, "lift a no-fly zone"),
    _c("pause_dispatch", NoArgs, True, "no new sorties start"),
    _c("resume_dispatch", NoArgs, True, "sorties start again"),
])

_DURATION = re.compile(r"^\+?(\d+(?:\.\d+)?)\s*(s|m|min|h|d)$")
_UNIT_S: Final = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def parse_when(text: str, now: datetime) -> datetime:
    """A moment: ISO 8601 with a zone (`2026-12-03T12:00:00Z`), or a duration from `now` (`30m`,
    `+2h`, `90s`, `1d`). ValueError otherwise (a time without zone is ambiguous across machines)."""
    text = text.strip()
    match = _DURATION.match(text)
    if match:
        return now + timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO 8601 time nor a duration like 30m or 2h") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add Z for UTC, or give a duration like 30m)")
    return moment

