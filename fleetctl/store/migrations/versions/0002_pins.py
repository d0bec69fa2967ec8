"""Operator pins: an order an operator pinned to one vehicle (dispatch gives it to no other).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("pinned_vehicle", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("pinned_vehicle")
