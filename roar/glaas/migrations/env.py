"""Alembic environment: the connection comes from roar.glaas.db.migrate, never from a
file or the environment."""

from alembic import context

from roar.glaas.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
