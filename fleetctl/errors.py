"""Errors raised by the fleetctl service.

Every failure a caller (an order producer, an operator, the CLI) can act on is one of these; errors of
the packages below (planner, vehicles, SQLAlchemy, aiomqtt) are converted at the boundary with
``raise ... from``::

    FleetError
     ├── OrderRejected(reason, detail)          an order fails validation (machine-readable reason)
     ├── IllegalTransition(entity, from, to)    a lifecycle step the state machine does not allow
     ├── UnknownOrder(order_id)                 no order with that id
     ├── UnknownSortie(sortie_id)               no sortie with that id
     ├── UnknownVehicleId(vehicle_id)           no vehicle with that id in the site's fleet
     ├── StoreError                             the store cannot be opened, migrated or written
     ├── BusError                               the MQTT broker cannot be reached or refused us
     │    ├── BusRefused(reason)                  the broker refused our CONNECT (credentials, client id)
     │    ├── BusUnavailable                      not connected, or the broker did not confirm in time
     │    ├── BusQueueFull(limit)                 the bounded outgoing queue is full
     │    ├── InvalidTopic(value, why)            a name that cannot be an MQTT topic (level)
     │    └── SchemaMismatch(topic, why)          a message does not match the AsyncAPI document
     ├── ConfigError                            the service configuration is invalid
     │    └── ScenarioError(path, key)            a scenario file (fleetctl scenario run) is invalid
     └── ControlError(code, message)            an operator's command was refused or failed (the
          │                                     service's typed answer on the control topics)
          └── ControlTimeout                      no answer from the service in time
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


class UnknownSortie(FleetError):
    def __init__(self, sortie_id: str) -> None:
        self.sortie_id = sortie_id
        super().__init__(f"unknown sortie {sortie_id!r}")


class UnknownVehicleId(FleetError):
    def __init__(self, vehicle_id: str, known: Sequence[str] = ()) -> None:
        self.vehicle_id = vehicle_id
        self.known = tuple(known)
        super().__init__(f"unknown vehicle {vehicle_id!r} (known: {', '.join(self.known) or 'none'})")


class StoreError(FleetError):
    """The store could not be opened, migrated, read or written."""


class BusError(FleetError):
    """The MQTT broker could not be reached, or refused our credentials or a topic."""


class BusRefused(BusError):
    """The broker answered our CONNECT with a refusal (bad username or password, not authorised,
    client id rejected). Unlike a broker that is down, retrying will not help until someone changes
    the credentials or the broker's configuration. `reason` is the broker's reason in words."""

    def __init__(self, url: str, reason: str, username: str | None = None) -> None:
        self.url = url
        self.reason = reason
        self.username = username
        who = f"user {username!r}" if username else "anonymous login"
        super().__init__(f"broker {url} refused {who}: {reason}")


class BusUnavailable(BusError):
    """Not connected to the broker, or the broker did not confirm a publish in time."""


class BusQueueFull(BusError):
    """The bounded queue of messages waiting for the broker is full: the broker has been away too long
    or the service produces faster than the broker takes. The caller keeps the message (its outbox)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"{limit} messages are already waiting for the broker")


class InvalidTopic(BusError):
    """A name (site, order id, vehicle id, client name) that cannot be used as an MQTT topic level,
    or a topic this service does not publish or read."""

    def __init__(self, value: str, why: str) -> None:
        self.value = value
        self.why = why
        super().__init__(f"invalid topic or topic level {value!r}: {why}")


class SchemaMismatch(BusError):
    """A message does not match the AsyncAPI document of the bus (unknown channel, or a payload that
    fails the channel's JSON Schema)."""

    def __init__(self, topic: str, why: str) -> None:
        self.topic = topic
        self.why = why
        super().__init__(f"message on {topic!r} does not match the AsyncAPI document: {why}")


class ConfigError(FleetError):
    """The service configuration (TOML file or FLEETCTL_ environment) is invalid."""


class ScenarioError(ConfigError):
    """A scenario file that cannot be run: `path` is the file, `key` the dotted key that is wrong
    ("" for the file as a whole, e.g. a TOML syntax error)."""

    def __init__(self, path: str, key: str, why: str) -> None:
        self.path = path
        self.key = key
        self.why = why
        super().__init__(f"{path}: {key}: {why}" if key else f"{path}: {why}")


class ControlError(FleetError):
    """The service answered an operator's control request with an error. `code` is machine-readable
    (see `fleetctl.control.commands.ErrorCode`: forbidden, unknown_vehicle, vehicle_error, ...), the
    message says why in words."""

    def __init__(self, code: str, message: str, result: Any = None) -> None:
        self.code = code
        self.message = message
        self.result = result
        super().__init__(f"{message} [{code}]")


class ControlTimeout(ControlError):
    """No answer to a control request in time: the service is not running, the broker dropped the
    request (an ACL that does not let this client publish on its request topic looks like this on
    MQTT 3.1.1), or the command is still running."""

    def __init__(self, message: str) -> None:
        super().__init__("timeout", message)
