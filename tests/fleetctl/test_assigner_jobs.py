"""What dispatch plans with: the order as stored, not as first received."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from fleetctl.assigner import _job
from fleetctl.orders.lifecycle import OrderState
from fleetctl.store.records import OrderRecord

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def record() -> OrderRecord:
    payload = {"order_id": "P-1", "site": "helsinki", "dropoff": "kasarmikatu-42", "weight_kg": 3.0,
               "handoff": "pin", "handoff_pin": "2580",
               "window": {"earliest": T0.isoformat(), "latest": (T0 + timedelta(hours=1)).isoformat()}}
    return OrderRecord(order_id="P-1", state=OrderState.ACCEPTED, site="helsinki", fingerprint="f", payload=payload,
                       reason=None, detail=None, kinds=("robot",), depot="erottaja", dropoff_xy_m=(10.0, 20.0),
                       priority="standard", window_earliest=T0, window_latest=T0 + timedelta(hours=1),
                       vehicle_id=None, sortie_id=None, eta=None, parcel_on_board=False, attempts=1,
                       created_at=T0, updated_at=T0)


def test_a_retried_order_is_planned_in_its_new_window() -> None:
    """A failed hand-off is tried again in a window an hour on: dispatch must not send the robot at
    once (it did: the job took the window of the order as first received)."""
    first = _job(record())
    assert first is not None
    assert first.earliest_s == T0.timestamp()
    later = replace(record(), reason="retry_after_handoff_failed", window_earliest=T0 + timedelta(hours=2),
                    window_latest=T0 + timedelta(hours=3))
    job = _job(later)
    assert job is not None
    assert (job.earliest_s, job.latest_s) == ((T0 + timedelta(hours=2)).timestamp(), (T0 + timedelta(hours=3)).timestamp())
