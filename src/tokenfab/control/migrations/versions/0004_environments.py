"""tenant environments: environments, their steps, and the node / partition key / VLAN pools

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-03 20:05:00

An environment's nodes, InfiniBand partition key and front-end VLAN are rows whose primary key is the
node, the key or the VLAN: the database refuses to hand one to two environments, whatever the code did.
``environment_steps`` records each step of an operation, so a restart finishes or rolls it back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("storage_tb", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("intent", sa.JSON(), nullable=True),
        sa.Column("request_key", sa.String(length=64), nullable=True),
        sa.Column("live_name", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "live_name", name="uq_environments_live_name"),
        sa.UniqueConstraint("tenant_id", "request_key", name="uq_environments_request_key"),
    )
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_environments_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_environments_tenant_id"), ["tenant_id"], unique=False)
    op.create_table(
        "environment_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("environment_id", sa.String(length=32), nullable=False),
        sa.Column("op", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("environment_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_environment_steps_environment_id"), ["environment_id"], unique=False
        )
    op.create_table(
        "environment_nodes",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("environment_id", sa.String(length=32), nullable=False),
        sa.Column("domain", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"]),
        sa.ForeignKeyConstraint(["node_id"], ["nodes.id"]),
        sa.PrimaryKeyConstraint("node_id"),
    )
    with op.batch_alter_table("environment_nodes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_environment_nodes_environment_id"), ["environment_id"], unique=False
        )
    op.create_table(
        "environment_pkeys",
        sa.Column("pkey", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("environment_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"]),
        sa.PrimaryKeyConstraint("pkey"),
        sa.UniqueConstraint("environment_id"),
    )
    op.create_table(
        "environment_vlans",
        sa.Column("vlan", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("environment_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"]),
        sa.PrimaryKeyConstraint("vlan"),
        sa.UniqueConstraint("environment_id"),
    )


def downgrade() -> None:
    op.drop_table("environment_vlans")
    op.drop_table("environment_pkeys")
    with op.batch_alter_table("environment_nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_environment_nodes_environment_id"))
    op.drop_table("environment_nodes")
    with op.batch_alter_table("environment_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_environment_steps_environment_id"))
    op.drop_table("environment_steps")
    with op.batch_alter_table("environments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_environments_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_environments_state"))
    op.drop_table("environments")
