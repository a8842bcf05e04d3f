"""The analyst web application: server-rendered pages (Jinja2 + htmx) under ``/ui``.

``router`` is what ``sciti.api.app`` includes: one mount of the web application, which enforces
access through ``sciti.access`` with the browser session cookie and its CSRF token.
"""

from fastapi import APIRouter
from starlette.routing import Mount

from sciti.web.app import WEB_ROOT, WebDispatcher, create_web_app

router = APIRouter()
router.routes.append(Mount(WEB_ROOT, app=WebDispatcher(), name="web"))

__all__ = ["WEB_ROOT", "create_web_app", "router"]
