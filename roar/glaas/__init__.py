"""GLaaS, the lineage server: `roar glaas serve` and its administration (docs/glaas.md).

Needs the `glaas` extra (FastAPI, uvicorn, SQLAlchemy, Alembic, psycopg). Nothing outside
this package imports it, so no other verb pays for it.

- models, migrations/, db: the schema and opening the database
- store/: the queries (registration, lookups, labels, tokens), no HTTP
- api/: one FastAPI router per resource; schemas: the payloads and their limits
- app, serve: the application and the uvicorn process
"""
