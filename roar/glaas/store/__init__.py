"""The GLaaS storage layer: queries over roar.glaas.models, no HTTP.

Each function takes an SQLAlchemy Session and a Principal (who asks) and raises a
StoreError (with the HTTP status the API gives it) when the answer is no. Uniqueness
(one DAG per hash, one DAG per job, one edge per job and artifact) is held by database
constraints, so several server processes on one database stay consistent.
"""
