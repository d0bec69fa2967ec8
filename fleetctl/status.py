"""An order's stored record as the status producers read (fleet/<site>/orders/<id>/status)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleetctl.bus.payloads import OrderStatus, ProofOfDelivery
from fleetctl.store import OrderRecord
from planner.vehicle_model import VehicleKind

_KINDS: dict[str, VehicleKind] = {"drone": "drone", "robot": "robot"}


def order_status(record: OrderRecord, *, proof: Mapping[str, Any] | None = None, note: str = "") -> OrderStatus:
    fields = None
    payload = record.payload
    if record.reason == "malformed" and isinstance(payload, Mapping):
        fields = {"errors": payload.get("errors")} if "errors" in payload else None
    return OrderStatus(
        order_id=record.order_id, state=record.state, reason=record.reason, detail=record.detail or "",
        eta=record.eta, vehicle_id=record.vehicle_id, kinds=[_KINDS[k] for k in record.kinds if k in _KINDS],
        updated_at=record.updated_at, proof=ProofOfDelivery.model_validate(proof) if proof else None,
        note=note, fields=fields,
    )
