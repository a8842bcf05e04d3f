"""The HTTP API (FastAPI): ``create_app(settings)``; routers in ``sciti.api.routers``.

Names are loaded on first use so that importing a router module (``sciti.api.deps``) does not
build the whole app first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_PREFIX", "PUBLIC_PATHS", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sciti.api import app

        return getattr(app, name)
    raise AttributeError(f"module 'sciti.api' has no attribute {name!r}")
