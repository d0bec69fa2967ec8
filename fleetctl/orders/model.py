"""The delivery order as producers send it (JSON on `fleet/<site>/orders/new` or from the console).

    {"order_id": "A-1001", "site": "helsinki", "dropoff": "locker-kamppi", "weight_kg": 1.2,
     "window": {"earliest": "2026-12-03T10:00:00Z", "latest": "2026-12-03T11:00:00Z"},
     "priority": "express", "handoff": "locker"}

`dropoff` is a drop point's name or {"lat_deg": .., "lon_deg": ..}; `pickup_depot` is optional (the
nearest depot that can serve the order). The model checks shape and types only; whether the site
can serve the order is `fleetctl.orders.validate`'s job.
"""

from __future__ import annotations

import enum
import hashlib
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: An order id: the idempotency key, and a level of the order's status topic.
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=ORDER_ID_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class Priority(enum.StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"
    MEDICAL = "medical"

    @property
    def weight(self) -> int:
        """How much an on-time delivery of this priority is worth to dispatch."""
        return {"standard": 1, "express": 3, "medical": 10}[self.value]


class SizeClass(enum.StrEnum):
    """Parcel size: a drone's gripper box takes `small`; a robot's bay `small` and `medium`."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class Handoff(enum.StrEnum):
    DRONE_RELEASE = "drone_release"  # a drone lowers and releases it at the drop point
    LOCKER = "locker"  # left in a parcel locker (drone or robot)
    PIN = "pin"  # a robot hands it over when the recipient enters the PIN


class LatLon(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lat_deg: float = Field(ge=-90.0, le=90.0)
    lon_deg: float = Field(ge=-180.0, le=180.0)


class TimeWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    earliest: AwareDatetime
    latest: AwareDatetime


class Order(BaseModel):
    """One delivery order. `order_id` is the idempotency key: the same id twice is the same order."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    order_id: OrderId
    site: Name
    dropoff: Annotated[str, Field(min_length=1, max_length=64)] | LatLon
    weight_kg: float = Field(gt=0.0, le=1000.0)
    window: TimeWindow
    pickup_depot: Name | None = None
    size: SizeClass = SizeClass.SMALL
    priority: Priority = Priority.STANDARD
    recipient_ref: Annotated[str, Field(max_length=128)] | None = None
    handoff: Handoff = Handoff.LOCKER
    handoff_pin: Annotated[str, Field(pattern=r"^[0-9]{4,8}$")] | None = Field(
        default=None, description="with handoff 'pin': the PIN the shop gave the recipient; the robot hands "
        "the parcel over when it comes on orders/<order_id>/handoff (never published by the service)")

    def fingerprint(self) -> str:
        """A digest of the content, to tell a duplicate (same id, same content) from a conflict."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def utc_iso(moment: datetime) -> str:
    """A timestamp as producers and the store see it: ISO 8601 in UTC with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
