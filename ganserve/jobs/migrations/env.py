"""Alembic environment: run by ``ganserve.jobs.migrate.upgrade`` with an open connection."""

from alembic import context

from ganserve.jobs.records import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
