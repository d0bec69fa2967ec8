"""The store's tables as SQLAlchemy Core metadata: the queries are written against these.

The migrations in `migrations/versions` create the same schema step by step, and a test compares the
migrated database with this metadata, so the two cannot drift apart silently. Change the schema by
editing both: this file (what the code expects) and a new revision (how a live database gets there).

Timestamps are UTC (`UtcDateTime`); JSON is JSONB on PostgreSQL and text on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

from fleetctl.store.records import EntityKind

#: The kinds of thing an event is about (the `entity` column; checked by the database).
ENTITY_KINDS: tuple[str, ...] = get_args(EntityKind)
ID_LENGTH = 64  # order ids are at most 64 characters (fleetctl.orders.model.OrderId); the rest follow


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on both engines.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so the value is stored as naive UTC
    text (which sorts chronologically, so range queries and indexes work). A naive datetime is a
    bug in the caller: its zone is unknown, so it is refused rather than guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the store needs an aware (UTC) time")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_type() -> sa.types.TypeEngine[Any]:
    """JSON: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite."""
    return sa.JSON().with_variant(JSONB(), "postgresql")


# Autoincrement keys: BIGSERIAL on PostgreSQL; on SQLite it must be exactly INTEGER to be the rowid
# alias (and AUTOINCREMENT, below, so a seq is never handed out twice, even if the newest events
# were ever pruned: a publisher's cursor would skip the reused numbers).
SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Constraint names are fixed by convention, so a later migration can refer to them on both engines.
metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# The current state of every order. `state` is not CHECK-constrained on purpose: the lifecycle
# (fleetctl.orders.lifecycle) is the authority on states, and the API only writes OrderState values.
orders = sa.Table(
    "orders", metadata,
    sa.Column("order_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("site", sa.String(ID_LENGTH)),  # NULL for a malformed order whose site is unknown
    sa.Column("payload", json_type()),  # the Order as JSON (or the raw object of a malformed one)
    sa.Column("fingerprint", sa.String(64), nullable=False),  # tells a duplicate from an id conflict
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64)),  # machine-readable: why the order is in its current state
    sa.Column("detail", sa.Text),  # the same in words (for an acceptance: the validator's note)
    sa.Column("kinds", json_type(), nullable=False),  # vehicle kinds that can serve it: ["drone", ...]
    sa.Column("depot", sa.String(ID_LENGTH)),
    sa.Column("dropoff_x_m", sa.Float),  # the drop-off in the site's local frame (east, metres)
    sa.Column("dropoff_y_m", sa.Float),  # (north, metres): dispatch needs it again after a restart
    sa.Column("priority", sa.String(16)),
    sa.Column("window_earliest", UtcDateTime),
    sa.Column("window_latest", UtcDateTime),
    sa.Column("vehicle_id", sa.String(ID_LENGTH)),
    sa.Column("sortie_id", sa.String(ID_LENGTH)),
    sa.Column("eta", UtcDateTime),
    sa.Column("parcel_on_board", sa.Boolean, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),  # sorties assigned to it so far
    sa.Column("pinned_vehicle", sa.String(ID_LENGTH)),  # an operator's pin: dispatch uses no other vehicle
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "state"),
    sa.Index(None, "vehicle_id"),
    sa.Index(None, "created_at"),
    sa.Index(None, "updated_at"),
)

vehicles = sa.Table(
    "vehicles", metadata,
    sa.Column("vehicle_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("sysid", sa.Integer, nullable=False),  # MAVLink system id: how a restart finds it again
    sa.Column("kind", sa.String(16), nullable=False),  # "drone" | "robot"
    sa.Column("model", sa.String(ID_LENGTH), nullable=False),
    sa.Column("depot", sa.String(ID_LENGTH)),
    sa.Column("grounded", sa.Boolean, nullable=False),  # the operator keeps it out of dispatch
    sa.Column("last_state", json_type()),  # the last snapshot seen, for the console after a restart
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("sysid"),
)

# One delivery flight or drive. Enough is kept to pick it up after a crash: the plan (with the
# mission's seqs of the drop point and the hand-off), how many items were uploaded and when.
sorties = sa.Table(
    "sorties", metadata,
    sa.Column("sortie_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("vehicle_id", sa.String(ID_LENGTH), sa.ForeignKey("vehicles.vehicle_id"), nullable=False),
    sa.Column("order_id", sa.String(ID_LENGTH), sa.ForeignKey("orders.order_id"), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("plan", json_type(), nullable=False),
    sa.Column("mission_items", sa.Integer),  # the mission's item count, once known
    sa.Column("uploaded_at", UtcDateTime),  # when the vehicle confirmed the mission
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "state"),
    sa.Index(None, "order_id"),
    sa.Index(None, "vehicle_id"),
)

# Append-only history. Every state change writes its event in the same transaction, so the log and
# the tables never disagree; `seq` is also the outbox position of the MQTT publisher.
events = sa.Table(
    "events", metadata,
    sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("entity", sa.String(16), nullable=False),
    sa.Column("entity_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),  # e.g. "order.accepted", "sortie.uploading"
    sa.Column("data", json_type(), nullable=False),
    sa.CheckConstraint(sa.column("entity").in_(ENTITY_KINDS), name="entity"),
    sa.Index(None, "entity", "entity_id", "seq"),
    sqlite_autoincrement=True,
)

# How far each publisher got: events with seq > last_seq are not yet published.
outbox_cursor = sa.Table(
    "outbox_cursor", metadata,
    sa.Column("name", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
