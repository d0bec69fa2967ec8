"""The durable store of the delivery service: orders, sorties, vehicles and the event log, on
SQLite (embedded default) or PostgreSQL, through SQLAlchemy 2 async Core. Migrations (Alembic, in
`migrations/`) are applied when the store opens.

    async with Store.open("sqlite+aiosqlite:///fleet.db") as store: ...
"""

from fleetctl.store.records import (
    KEEP,
    SORTIE_FINISHED,
    EntityKind,
    EventRecord,
    OrderRecord,
    ReceiveItem,
    ReceiveResult,
    Rejection,
    SortieRecord,
    VehicleRecord,
)
from fleetctl.store.store import Store

__all__ = ["KEEP", "SORTIE_FINISHED", "EntityKind", "EventRecord", "OrderRecord", "ReceiveItem", "ReceiveResult",
           "Rejection", "SortieRecord", "Store", "VehicleRecord"]
