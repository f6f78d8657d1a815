"""Alembic environment: always run through :func:`scimgate.store.migrate.upgrade`.

That function opens the connection (holding the migration lock) and hands it over in
``config.attributes["connection"]``.
"""

from alembic import context

from scimgate.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
