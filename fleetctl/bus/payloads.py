"""The JSON payload of every topic, as pydantic models (the AsyncAPI document is generated from them).

Orders come in as `fleetctl.orders.Order`. Everything the service publishes is one of the models
below; `encode` turns one into the bytes that go on the wire. The outgoing models ignore unknown
fields when read back, so a consumer built against this version still reads a newer service's
messages; timestamps are ISO 8601 with a zone (UTC, "Z").
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fleetctl.bus.topics import TopicKind
from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import Order, OrderId
from planner.vehicle_model import VehicleKind

#: How much of a rejected message's raw payload goes back to its producer.
EXCERPT_CHARS: Final = 200

Id = Annotated[str, Field(min_length=1, max_length=64)]
Position = Annotated[list[float], Field(min_length=2, max_length=3, description="[lon, lat] or [lon, lat, alt]")]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProofOfDelivery(_Payload):
    """How and where a parcel was handed over."""

    at: AwareDatetime
    method: str = Field(description="gripper_release, locker or pin (the recipient's PIN matched)",
                        examples=["gripper_release"])
    lat_deg: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon_deg: float | None = Field(default=None, ge=-180.0, le=180.0)
    distance_m: float | None = Field(default=None, ge=0.0, description="from the drop point")
    within_radius: bool | None = None
    gripper_confirmed: bool | None = Field(default=None, description="a drone's release: true when the gripper "
                                           "acknowledged it, false when the mission's own release item did it "
                                           "with no ground station listening")


class OrderStatus(_Payload):
    """An order's current state (retained on fleet/<site>/orders/<order_id>/status)."""

    order_id: OrderId
    state: OrderState
    reason: str | None = Field(default=None, description="machine-readable, e.g. a rejection reason")
    detail: str = Field(default="", description="the reason in words")
    eta: AwareDatetime | None = Field(default=None, description="expected delivery")
    vehicle_id: str | None = None
    kinds: list[VehicleKind] = Field(default_factory=list, description="vehicle kinds that can serve it")
    updated_at: AwareDatetime
    proof: ProofOfDelivery | None = None
    note: str = Field(default="", description="anything else the producer should know")
    fields: dict[str, Any] | None = Field(default=None, description="per-field errors of a malformed order, "
                                          "or facts a producer can act on")


class HandoffMessage(BaseModel):
    """The recipient's PIN for an order a robot hands over (fleet/<site>/orders/<order_id>/handoff)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    pin: str = Field(pattern=r"^[0-9]{4,8}$")
    at: AwareDatetime | None = None


class RejectedMessage(_Payload):
    """A message on orders/new that could not be answered on an order's status topic, because it has
    no usable order id (not JSON, no order_id, or one that cannot be a topic level)."""

    reason: str = Field(description="machine-readable, e.g. malformed")
    detail: str
    excerpt: str = Field(max_length=EXCERPT_CHARS + 1, description="the start of the raw payload")
    at: AwareDatetime
    fields: dict[str, Any] | None = None

    @classmethod
    def of(cls, raw: bytes, reason: str, detail: str, at: AwareDatetime,
           fields: dict[str, Any] | None = None) -> RejectedMessage:
        """A rejection quoting the start of `raw` (undecodable bytes replaced), so the producer can
        recognise its message."""
        text = raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
        excerpt = text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"
        return cls(reason=reason, detail=detail, excerpt=excerpt, at=at, fields=fields)


class EntityKind(enum.StrEnum):
    ORDER = "order"
    SORTIE = "sortie"
    VEHICLE = "vehicle"
    ZONE = "zone"
    SERVICE = "service"


class EventMessage(_Payload):
    """One transition, as stored in the events table (fleet/<site>/events). `seq` grows by one per
    stored event, so a consumer sees gaps and duplicates."""

    seq: int = Field(ge=0)
    at: AwareDatetime
    entity: EntityKind
    entity_id: Id
    kind: str = Field(min_length=1, max_length=64, examples=["accepted", "mode_changed"])
    data: dict[str, Any] = Field(default_factory=dict)


class VehicleStateMessage(_Payload):
    """Coalesced telemetry of one vehicle (retained on fleet/<site>/vehicles/<vehicle_id>/state)."""

    vehicle_id: Id
    kind: VehicleKind
    mode: str = Field(examples=["MISSION", "HOLD"])
    armed: bool
    lat_deg: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon_deg: float | None = Field(default=None, ge=-180.0, le=180.0)
    alt_m: float | None = Field(default=None, description="above the home position")
    battery_percent: float | None = Field(default=None, ge=0.0, le=100.0)
    link_alive: bool
    sortie_id: str | None = None
    at: AwareDatetime


class Circle(_Payload):
    lat_deg: float = Field(ge=-90.0, le=90.0)
    lon_deg: float = Field(ge=-180.0, le=180.0)
    radius_m: float = Field(gt=0.0)


class ZoneInfo(_Payload):
    """One no-fly zone: a polygon (GeoJSON order: [lon, lat]) or a circle, between two heights."""

    zone_id: Id
    reason: str = ""
    polygon: list[list[Position]] | None = Field(default=None, description="GeoJSON Polygon coordinates")
    circle: Circle | None = None
    floor_m: float = 0.0
    ceiling_m: float | None = Field(default=None, description="None: no ceiling")
    active_from: AwareDatetime | None = None
    active_until: AwareDatetime | None = None


class ZonesMessage(_Payload):
    """Every no-fly zone active now (retained on fleet/<site>/zones): the whole set, so a consumer that
    subscribes late needs nothing else."""

    at: AwareDatetime
    zones: list[ZoneInfo] = Field(default_factory=list)


class ControlRequest(_Payload):
    """An operator command (fleet/<site>/control/<client>/request)."""

    correlation_id: str = Field(min_length=1, max_length=128)
    command: str = Field(min_length=1, max_length=64, examples=["cancel_order", "pause_vehicle"])
    args: dict[str, Any] = Field(default_factory=dict)
    expires_at: AwareDatetime | None = Field(default=None, description="not to be carried out after this "
                                             "(wall clock): a request the broker delivers late, after a "
                                             "reconnect, is answered `expired` instead")


class ControlResponse(_Payload):
    """The answer to a control request (fleet/<site>/control/<client>/response)."""

    correlation_id: str = Field(min_length=1, max_length=128)
    ok: bool
    result: Any = None
    error: str | None = None
    code: str | None = Field(default=None, description="machine-readable error (with ok false), e.g. "
                             "forbidden, bad_args, unknown_vehicle, illegal_transition, vehicle_error")


#: The payload model of every topic kind.
PAYLOADS: Final[dict[TopicKind, type[BaseModel]]] = {
    TopicKind.ORDERS_NEW: Order,
    TopicKind.ORDER_HANDOFF: HandoffMessage,
    TopicKind.ORDER_STATUS: OrderStatus,
    TopicKind.ORDERS_REJECTED: RejectedMessage,
    TopicKind.VEHICLE_STATE: VehicleStateMessage,
    TopicKind.EVENTS: EventMessage,
    TopicKind.ZONES: ZonesMessage,
    TopicKind.CONTROL_REQUEST: ControlRequest,
    TopicKind.CONTROL_RESPONSE: ControlResponse,
}


def encode(payload: BaseModel) -> bytes:
    """The wire form of a payload: compact JSON, UTF-8, every field present (null when unset)."""
    return payload.model_dump_json().encode()
