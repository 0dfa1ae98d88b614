"""The GLaaS web pages (docs/web.md): `/`, `/a/<hash>`, `/j/<uid>`, `/s/<hash>`, `/login`,
served by the same application as the API (roar.glaas.app mounts them)."""

from __future__ import annotations


def mount(app) -> None:
    from roar.glaas.web.routes import router

    app.include_router(router)
