"""The GLaaS HTTP API: one router per resource, all under /api/v1 (roar.glaas.app)."""
