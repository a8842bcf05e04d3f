"""One module per page (or group of pages); ``ROUTERS`` lists them for the web app."""

from sciti.web.views import admin, auth, home, risk, sources, sql

ROUTERS = [auth.router, home.router, sources.router, sql.router, risk.router, admin.router]

__all__ = ["ROUTERS"]
