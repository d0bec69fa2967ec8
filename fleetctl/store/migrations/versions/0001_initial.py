"""The first schema: orders, vehicles, sorties, events, outbox_cursor.

Revision ID: 0001
Revises: (none)
Create Date: 2026-01-01

Written out in full rather than imported from fleetctl.store.schema: a revision is a fixed step in
history, and must keep creating exactly this even after schema.py moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64)),
        sa.Column("payload", _json()),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("detail", sa.Text),
        sa.Column("kinds", _json(), nullable=False),
        sa.Column("depot", sa.String(64)),
        sa.Column("dropoff_x_m", sa.Float),
        sa.Column("dropoff_y_m", sa.Float),
        sa.Column("priority", sa.String(16)),
        sa.Column("window_earliest", _utc()),
        sa.Column("window_latest", _utc()),
        sa.Column("vehicle_id", sa.String(64)),
        sa.Column("sortie_id", sa.String(64)),
        sa.Column("eta", _utc()),
        sa.Column("parcel_on_board", sa.Boolean, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_orders"),
    )
    for column in ("state", "vehicle_id", "created_at", "updated_at"):
        op.create_index(f"ix_orders_{column}", "orders", [column])

    op.create_table(
        "vehicles",
        sa.Column("vehicle_id", sa.String(64), nullable=False),
        sa.Column("sysid", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("depot", sa.String(64)),
        sa.Column("grounded", sa.Boolean, nullable=False),
        sa.Column("last_state", _json()),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", name="pk_vehicles"),
        sa.UniqueConstraint("sysid", name="uq_vehicles_sysid"),
    )

    op.create_table(
        "sorties",
        sa.Column("sortie_id", sa.String(64), nullable=False),
        sa.Column("vehicle_id", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("plan", _json(), nullable=False),
        sa.Column("mission_items", sa.Integer),
        sa.Column("uploaded_at", _utc()),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("sortie_id", name="pk_sorties"),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.vehicle_id"], name="fk_sorties_vehicle_id_vehicles"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.order_id"], name="fk_sorties_order_id_orders"),
    )
    for column in ("state", "order_id", "vehicle_id"):
        op.create_index(f"ix_sorties_{column}", "sorties", [column])

    op.create_table(
        "events",
        # INTEGER (not BIGINT) on SQLite: only that makes it the rowid alias that autoincrements.
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        # op.f: this exact name (the metadata's naming convention would prefix it a second time)
        sa.CheckConstraint("entity IN ('order', 'sortie', 'vehicle', 'zone', 'service')", name=op.f("ck_events_entity")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_entity_entity_id_seq", "events", ["entity", "entity_id", "seq"])

    op.create_table(
        "outbox_cursor",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_outbox_cursor"),
    )


def downgrade() -> None:
    for table in ("outbox_cursor", "events", "sorties", "vehicles", "orders"):
        op.drop_table(table)
