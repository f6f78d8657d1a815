"""PostgreSQL: the function that keeps each resource's events in commit order.

See scimgate/store/feed_order.py. ``last_writer`` is a row's ``xmin``; ours is compared
to it modulo 2^32, as PostgreSQL compares transaction ids (both are recent: a row left
unwritten for 2^31 transactions has long been frozen by autovacuum). The special
ids below 3 (frozen rows) are older than any, and so is every committed one when we
have no id yet (the one we get will be newer): then nothing is assigned, which also
lets a new session run the function once to have it compiled (feed_order.WARM).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
CREATE OR REPLACE FUNCTION scimgate_in_feed_order(last_writer xid) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  last bigint := CAST(CAST(last_writer AS text) AS bigint);
  mine bigint := CAST(CAST(CAST(pg_current_xact_id_if_assigned() AS xid) AS text) AS bigint);
BEGIN
  IF last < 3 OR mine IS NULL OR (mine - last + 4294967296) % 4294967296 < 2147483648 THEN
    RETURN true;
  END IF;
  RAISE EXCEPTION USING
    ERRCODE = 'serialization_failure',
    CONSTRAINT = 'scimgate_in_feed_order',
    MESSAGE = 'a concurrent change to this row committed first with a newer transaction id',
    HINT = 'retry the transaction: its events would come before that change''s in the feed';
END
$$
"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS scimgate_in_feed_order(xid)")
