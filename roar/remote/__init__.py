"""The GLaaS client: talking to a lineage server from a workspace (docs/register.md).

- config: the server URL and token (`roar login`), GLAAS_URL / ROAR_GLAAS_TOKEN for CI
- http: requests with retries and backoff, replies unwrapped, refusals as RoarErrors
- payload: the DAG to send, built from the local store and its (already redacted) records
- register: the registration procedure (a staged registration session, then finalize)
- lookup: registered artifacts, sessions and DAGs, read back as roar.lineage.dag objects
- labels: pushing and pulling the labels of a registered entity

httpx is imported by roar.remote.http only, inside the commands that talk to a server.
"""
