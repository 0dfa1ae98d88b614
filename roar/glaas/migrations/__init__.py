"""Alembic migrations of the GLaaS schema, run by the server at start (roar.glaas.db)."""
