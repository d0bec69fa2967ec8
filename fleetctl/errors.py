"""Errors raised by the fleetctl service.

Every failure a caller (an order producer, an operator, the CLI) can act on is one of these; errors of
the packages below (planner, vehicles, SQLAlchemy, aiomqtt) are converted at the boundary with
``raise ... from``::

    FleetError
     ├── OrderRejected(reason, detail)          an order fails validation (machine-readable reason)
     ├── IllegalTransition(entity, from, to)    a lifecycle step the state machine does not allow
     ├── UnknownOrder(order_id)                 no order with that id
     ├── UnknownVehicleId(vehicle_id)           no vehicle with that id in the site's fleet
     ├── StoreError                             the store cannot be opened, migrated or written
     ├── BusError                               the MQTT broker cannot be reached or refused us
     └── ConfigError                            the service configuration is invalid
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class FleetError(Exception):
    """Base of every error raised by fleetctl."""


class OrderRejected(FleetError):
    """An order that will not be accepted. `reason` is machine-readable (see
    `fleetctl.orders.RejectReason`), `detail` says why in words, `fields` carries per-field errors
    of a malformed order and anything else a producer can act on (e.g. the zone's name)."""

    def __init__(self, reason: str, detail: str, fields: Mapping[str, Any] | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.fields = dict(fields or {})
        super().__init__(f"order rejected ({reason}): {detail}")


class IllegalTransition(FleetError):
    def __init__(self, entity: str, from_state: str, to_state: str) -> None:
        self.entity = entity
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"{entity}: no transition {from_state} -> {to_state}")


class UnknownOrder(FleetError):
    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"unknown order {order_id!r}")


class UnknownVehicleId(FleetError):
    def __init__(self, vehicle_id: str, known: Sequence[str] = ()) -> None:
        self.vehicle_id = vehicle_id
        self.known = tuple(known)
        super().__init__(f"unknown vehicle {vehicle_id!r} (known: {', '.join(self.known) or 'none'})")


class StoreError(FleetError):
    """The store could not be opened, migrated, read or written."""


class BusError(FleetError):
    """The MQTT broker could not be reached, or refused our credentials or a topic."""


class ConfigError(FleetError):
    """The service configuration (TOML file or FLEETCTL_ environment) is invalid."""
