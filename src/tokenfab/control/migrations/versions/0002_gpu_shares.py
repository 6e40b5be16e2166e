"""fractional GPUs: gpu_shares with triggers that keep a shared GPU within 1000 milli-GPU

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 13:05:00

A shared GPU slot holds one `gpu_shares` row per fractional workload. The database itself refuses:

- a share that would take the slot's sum past 1000 milli-GPU (or a share outside 0 < milli < 1000);
- a share on a slot allocated whole (`gpu_allocations`), and a whole allocation on a slot with shares;
- any UPDATE of `gpu_shares` (rows are only inserted and deleted).

On PostgreSQL the triggers first lock the node's row (``SELECT … FOR UPDATE``), so two transactions
adding to the same node are serialised and cannot both pass the sum check.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OVER = "gpu_shares: a GPU slot cannot hold more than 1000 milli-GPU"
_WHOLE = "gpu_shares: the GPU slot is allocated whole"
_SHARED = "gpu_allocations: the GPU slot is shared by fractional workloads"
_FIXED = "gpu_shares rows are inserted and deleted, never updated"


def upgrade() -> None:
    op.create_table(
        "gpu_shares",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("workload_id", sa.String(length=32), nullable=False),
        sa.Column("milli", sa.Integer(), nullable=False),
        sa.Column("placement_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("milli > 0 AND milli < 1000", name="ck_gpu_shares_milli"),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"]),
        sa.ForeignKeyConstraint(["placement_id"], ["placements.id"]),
        sa.ForeignKeyConstraint(["workload_id"], ["workloads.id"]),
        sa.PrimaryKeyConstraint("node_id", "slot", "workload_id"),
    )
    with op.batch_alter_table("gpu_shares", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpu_shares_workload_id"), ["workload_id"], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER gpu_shares_within_one_gpu BEFORE INSERT ON gpu_shares BEGIN "
            "SELECT RAISE(ABORT, '" + _OVER + "') WHERE (SELECT COALESCE(SUM(milli), 0) FROM gpu_shares "
            "WHERE node_id = NEW.node_id AND slot = NEW.slot) + NEW.milli > 1000; "
            "SELECT RAISE(ABORT, '" + _WHOLE + "') WHERE EXISTS (SELECT 1 FROM gpu_allocations "
            "WHERE node_id = NEW.node_id AND slot = NEW.slot); END"
        )
        op.execute(
            "CREATE TRIGGER gpu_allocations_not_shared BEFORE INSERT ON gpu_allocations BEGIN "
            "SELECT RAISE(ABORT, '" + _SHARED + "') WHERE EXISTS (SELECT 1 FROM gpu_shares "
            "WHERE node_id = NEW.node_id AND slot = NEW.slot); END"
        )
        op.execute(
            "CREATE TRIGGER gpu_shares_no_update BEFORE UPDATE ON gpu_shares BEGIN "
            "SELECT RAISE(ABORT, '" + _FIXED + "'); END"
        )
        op.execute(
            "CREATE TRIGGER gpu_allocations_no_update BEFORE UPDATE ON gpu_allocations BEGIN "
            "SELECT RAISE(ABORT, 'gpu_allocations rows are inserted and deleted, never updated'); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION gpu_shares_check() RETURNS trigger AS $$ BEGIN "
            "PERFORM 1 FROM nodes WHERE id = NEW.node_id FOR UPDATE; "
            "IF (SELECT COALESCE(SUM(milli), 0) FROM gpu_shares WHERE node_id = NEW.node_id "
            "AND slot = NEW.slot) + NEW.milli > 1000 THEN RAISE EXCEPTION '" + _OVER + "'; END IF; "
            "IF EXISTS (SELECT 1 FROM gpu_allocations WHERE node_id = NEW.node_id AND slot = NEW.slot) "
            "THEN RAISE EXCEPTION '" + _WHOLE + "'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER gpu_shares_within_one_gpu BEFORE INSERT ON gpu_shares "
            "FOR EACH ROW EXECUTE FUNCTION gpu_shares_check()"
        )
        op.execute(
            "CREATE FUNCTION gpu_allocations_check() RETURNS trigger AS $$ BEGIN "
            "PERFORM 1 FROM nodes WHERE id = NEW.node_id FOR UPDATE; "
            "IF EXISTS (SELECT 1 FROM gpu_shares WHERE node_id = NEW.node_id AND slot = NEW.slot) "
            "THEN RAISE EXCEPTION '" + _SHARED + "'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER gpu_allocations_not_shared BEFORE INSERT ON gpu_allocations "
            "FOR EACH ROW EXECUTE FUNCTION gpu_allocations_check()"
        )
        op.execute(
            "CREATE FUNCTION gpu_shares_reject_update() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION '" + _FIXED + "'; END $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER gpu_shares_no_update BEFORE UPDATE ON gpu_shares "
            "FOR EACH ROW EXECUTE FUNCTION gpu_shares_reject_update()"
        )
        op.execute(
            "CREATE TRIGGER gpu_allocations_no_update BEFORE UPDATE ON gpu_allocations "
            "FOR EACH ROW EXECUTE FUNCTION gpu_shares_reject_update()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("gpu_allocations_not_shared", "gpu_allocations_no_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS gpu_allocations_not_shared ON gpu_allocations")
        op.execute("DROP TRIGGER IF EXISTS gpu_allocations_no_update ON gpu_allocations")
        op.execute("DROP TRIGGER IF EXISTS gpu_shares_within_one_gpu ON gpu_shares")
        op.execute("DROP TRIGGER IF EXISTS gpu_shares_no_update ON gpu_shares")
    with op.batch_alter_table("gpu_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpu_shares_workload_id"))
    op.drop_table("gpu_shares")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS gpu_shares_check()")
        op.execute("DROP FUNCTION IF EXISTS gpu_allocations_check()")
        op.execute("DROP FUNCTION IF EXISTS gpu_shares_reject_update()")
