"""Initial schema: organizations, directories, users, groups, group members.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from scimgate.store.tables import ID, JsonDoc, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("external_id", sa.String(255), nullable=True),
        *_timestamps(),
        sa.UniqueConstraint("external_id", name="uq_organizations_external_id"),
    )
    op.create_table(
        "directories",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "organization_id",
            ID,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name="fk_directories_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("token_hint", sa.String(16), nullable=False),
        sa.Column("token_rotated_at", UTCDateTime, nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_directories_organization_id", "directories", ["organization_id"])
    op.create_table(
        "users",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "directory_id",
            ID,
            sa.ForeignKey(
                "directories.id", ondelete="CASCADE", name="fk_users_directory_id_directories"
            ),
            nullable=False,
        ),
        sa.Column("user_name", sa.Text, nullable=False),
        sa.Column("user_name_key", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text, nullable=True),
        sa.Column("display_name", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=True),
        sa.Column("data", JsonDoc, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("directory_id", "user_name_key", name="uq_users_directory_user_name"),
    )
    op.create_index("ix_users_directory_external_id", "users", ["directory_id", "external_id"])
    op.create_index("ix_users_directory_created", "users", ["directory_id", "created_at", "id"])
    op.create_table(
        "groups",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "directory_id",
            ID,
            sa.ForeignKey(
                "directories.id", ondelete="CASCADE", name="fk_groups_directory_id_directories"
            ),
            nullable=False,
        ),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("display_name_key", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text, nullable=True),
        sa.Column("data", JsonDoc, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        *_timestamps(),
    )
    op.create_index(
        "ix_groups_directory_display_name", "groups", ["directory_id", "display_name_key"]
    )
    op.create_index("ix_groups_directory_external_id", "groups", ["directory_id", "external_id"])
    op.create_index("ix_groups_directory_created", "groups", ["directory_id", "created_at", "id"])
    op.create_table(
        "group_members",
        sa.Column(
            "group_id",
            ID,
            sa.ForeignKey("groups.id", ondelete="CASCADE", name="fk_group_members_group_id_groups"),
            primary_key=True,
        ),
        sa.Column("member_id", ID, primary_key=True),
        sa.Column("directory_id", ID, nullable=False),
        sa.Column(
            "user_id",
            ID,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_group_members_user_id_users"),
            nullable=True,
        ),
        sa.Column(
            "member_group_id",
            ID,
            sa.ForeignKey(
                "groups.id", ondelete="CASCADE", name="fk_group_members_member_group_id_groups"
            ),
            nullable=True,
        ),
        sa.Column("display", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(
            "(user_id IS NOT NULL AND member_group_id IS NULL AND member_id = user_id) OR "
            "(user_id IS NULL AND member_group_id IS NOT NULL AND member_id = member_group_id)",
            name="ck_group_members_one_member",
        ),
    )
    op.create_index("ix_group_members_user", "group_members", ["user_id"])
    op.create_index("ix_group_members_member_group", "group_members", ["member_group_id"])


def downgrade() -> None:
    for table in ("group_members", "groups", "users", "directories", "organizations"):
        op.drop_table(table)
