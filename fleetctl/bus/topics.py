"""The topics of one site's bus, all under ``fleet/<site>/``.

    fleet/<site>/orders/new                  in   QoS 1          orders from producers (fleetctl.orders.Order)
    fleet/<site>/orders/<order_id>/handoff   in   QoS 1          the recipient's PIN for a robot hand-off
    fleet/<site>/orders/<order_id>/status    out  QoS 1 retained an order's current state, ETA, proof
    fleet/<site>/orders/rejected             out  QoS 1          rejections of messages with no usable order id
    fleet/<site>/vehicles/<vehicle_id>/state out  QoS 0 retained coalesced telemetry, at most 1 Hz
    fleet/<site>/events                      out  QoS 1          every transition of every entity
    fleet/<site>/zones                       out  QoS 1 retained the active no-fly zones
    fleet/<site>/control/<client>/request    in   QoS 1          operator commands
    fleet/<site>/control/<client>/response   out  QoS 1          their answers (same correlation id)

"in" and "out" are seen from the service. Every variable part is one topic level, so it may not
contain ``/`` (a level separator), ``+`` or ``#`` (wildcards), or NUL; `check_level` says so with an
`InvalidTopic` instead of letting a crafted order id publish or subscribe somewhere else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

from fleetctl.errors import InvalidTopic

ROOT: Final = "fleet"
#: A sanity bound well below MQTT's 65535 bytes: every id we put in a topic is at most 64 characters.
MAX_LEVEL_BYTES: Final = 256
_FORBIDDEN: Final = {"/": "a level separator", "+": "a wildcard", "#": "a wildcard", "\x00": "NUL"}


class TopicKind(enum.StrEnum):
    ORDERS_NEW = "orders_new"
    ORDER_HANDOFF = "order_handoff"
    ORDER_STATUS = "order_status"
    ORDERS_REJECTED = "orders_rejected"
    VEHICLE_STATE = "vehicle_state"
    EVENTS = "events"
    ZONES = "zones"
    CONTROL_REQUEST = "control_request"
    CONTROL_RESPONSE = "control_response"


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is used: the single source for the service, the AsyncAPI document and the tests.
    `template` names its variable levels in braces (AsyncAPI channel parameters)."""

    kind: TopicKind
    template: str
    direction: Literal["in", "out"]  # seen from the service: it receives "in", publishes "out"
    qos: int
    retained: bool
    summary: str

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(level[1:-1] for level in self.template.split("/") if level.startswith("{"))


SPECS: Final[dict[TopicKind, TopicSpec]] = {spec.kind: spec for spec in (
    TopicSpec(TopicKind.ORDERS_NEW, "fleet/{site}/orders/new", "in", 1, False,
              "New delivery orders from producers. Acknowledged (PUBACK) only once stored."),
    TopicSpec(TopicKind.ORDER_HANDOFF, "fleet/{site}/orders/{order_id}/handoff", "in", 1, False,
              "The recipient's PIN, for an order a robot hands over in person."),
    TopicSpec(TopicKind.ORDER_STATUS, "fleet/{site}/orders/{order_id}/status", "out", 1, True,
              "An order's current state with reason, ETA, vehicle and proof of delivery."),
    TopicSpec(TopicKind.ORDERS_REJECTED, "fleet/{site}/orders/rejected", "out", 1, False,
              "Rejections of messages on orders/new that carry no usable order id."),
    TopicSpec(TopicKind.VEHICLE_STATE, "fleet/{site}/vehicles/{vehicle_id}/state", "out", 0, True,
              "Coalesced vehicle telemetry, at most once a second per vehicle."),
    TopicSpec(TopicKind.EVENTS, "fleet/{site}/events", "out", 1, False,
              "Every transition of every order, sortie and vehicle, in store order (seq)."),
    TopicSpec(TopicKind.ZONES, "fleet/{site}/zones", "out", 1, True,
              "The no-fly zones active now, as one document."),
    TopicSpec(TopicKind.CONTROL_REQUEST, "fleet/{site}/control/{client}/request", "in", 1, False,
              "An operator command; the answer goes to the same client's response topic."),
    TopicSpec(TopicKind.CONTROL_RESPONSE, "fleet/{site}/control/{client}/response", "out", 1, False,
              "The answer to a control request, with the request's correlation id."),
)}


def check_level(value: str, what: str = "topic level") -> str:
    """`value` if it can be one MQTT topic level; InvalidTopic otherwise."""
    if not value:
        raise InvalidTopic(value, f"an empty {what}")
    for char, name in _FORBIDDEN.items():
        if char in value:
            raise InvalidTopic(value, f"a {what} may not contain {char!r} ({name})")
    if len(value.encode()) > MAX_LEVEL_BYTES:
        raise InvalidTopic(value[:40] + "...", f"a {what} of more than {MAX_LEVEL_BYTES} bytes")
    return value


def check_publish_topic(topic: str) -> str:
    """`topic` if a client may publish to it (no wildcards, not empty, no NUL); InvalidTopic otherwise."""
    if not topic:
        raise InvalidTopic(topic, "an empty topic")
    if "+" in topic or "#" in topic:
        raise InvalidTopic(topic, "wildcards are for subscriptions, not for publishing")
    if "\x00" in topic:
        raise InvalidTopic(topic, "a topic may not contain NUL")
    if len(topic.encode()) > 65535:
        raise InvalidTopic(topic[:40] + "...", "longer than MQTT's 65535 bytes")
    return topic


def check_filter(topic_filter: str) -> str:
    """`topic_filter` if it is a valid MQTT subscription filter; InvalidTopic otherwise."""
    levels = topic_filter.split("/")
    if not topic_filter or "\x00" in topic_filter:
        raise InvalidTopic(topic_filter, "an empty filter, or one with NUL")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise InvalidTopic(topic_filter, "'#' must be a whole level, and the last")
        if "+" in level and level != "+":
            raise InvalidTopic(topic_filter, "'+' must be a whole level")
    return topic_filter


def matches(topic: str, topic_filter: str) -> bool:
    """Whether `topic` matches the subscription filter (MQTT 3.1.1 section 4.7)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # [MQTT-4.7.2-1]: wildcards at the start do not match $SYS and friends
    topic_levels = topic.split("/")
    filter_levels = topic_filter.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or (level != "+" and level != topic_levels[index]):
            return False
    return len(topic_levels) == len(filter_levels)


@dataclass(frozen=True)
class ParsedTopic:
    """A topic of ours taken apart: its kind, its site and its variable level (order id, vehicle id
    or client name; None for topics without one)."""

    kind: TopicKind
    site: str
    key: str | None = None


def parse_topic(topic: str) -> ParsedTopic | None:
    """The kind, site and key of one of our topics; None for anything else."""
    levels = topic.split("/")
    if len(levels) < 3 or levels[0] != ROOT or not levels[1]:
        return None
    site, rest = levels[1], levels[2:]
    for spec in SPECS.values():
        pattern = spec.template.split("/")[2:]
        if len(pattern) != len(rest):
            continue
        key: str | None = None
        for want, got in zip(pattern, rest, strict=True):
            if want.startswith("{"):
                if not got:
                    break
                key = got
            elif want != got:
                break
        else:
            return ParsedTopic(spec.kind, site, key)
    return None


@dataclass(frozen=True)
class SiteTopics:
    """Every topic (and the filters the service subscribes to) of one site."""

    site: str

    def __post_init__(self) -> None:
        check_level(self.site, "site name")

    @property
    def prefix(self) -> str:
        return f"{ROOT}/{self.site}"

    # -- fixed topics
    @property
    def orders_new(self) -> str:
        return f"{self.prefix}/orders/new"

    @property
    def orders_rejected(self) -> str:
        return f"{self.prefix}/orders/rejected"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    @property
    def zones(self) -> str:
        return f"{self.prefix}/zones"

    # -- topics with a key
    def order_status(self, order_id: str) -> str:
        return f"{self.prefix}/orders/{check_level(order_id, 'order id')}/status"

    def order_handoff(self, order_id: str) -> str:
        return f"{self.prefix}/orders/{check_level(order_id, 'order id')}/handoff"

    def vehicle_state(self, vehicle_id: str) -> str:
        return f"{self.prefix}/vehicles/{check_level(vehicle_id, 'vehicle id')}/state"

    def control_request(self, client: str) -> str:
        return f"{self.prefix}/control/{check_level(client, 'client name')}/request"

    def control_response(self, client: str) -> str:
        return f"{self.prefix}/control/{check_level(client, 'client name')}/response"

    # -- subscription filters
    @property
    def all_order_handoffs(self) -> str:
        return f"{self.prefix}/orders/+/handoff"

    @property
    def all_order_status(self) -> str:
        return f"{self.prefix}/orders/+/status"

    @property
    def all_vehicle_states(self) -> str:
        return f"{self.prefix}/vehicles/+/state"

    @property
    def all_control_requests(self) -> str:
        return f"{self.prefix}/control/+/request"

    @property
    def everything(self) -> str:
        return f"{self.prefix}/#"

    def for_kind(self, kind: TopicKind, key: str | None = None) -> str:
        """The topic of `kind` (with its key for the kinds that have one)."""
        spec = SPECS[kind]
        if spec.parameters[1:] and key is None:
            raise InvalidTopic(spec.template, f"{kind} needs a {spec.parameters[1]}")
        levels = spec.template.split("/")
        return "/".join(self.site if level == "{site}" else
                        check_level(key or "", level[1:-1]) if level.startswith("{") else level
                        for level in levels)

    def parse(self, topic: str) -> ParsedTopic | None:
        """Like `parse_topic`, but None for another site's topics too."""
        parsed = parse_topic(topic)
        return parsed if parsed is not None and parsed.site == self.site else None
