"""Errors of the web application."""

from __future__ import annotations

from sciti.access.errors import AuthenticationRequired
from sciti.errors import SCITIError


class LoginNeeded(AuthenticationRequired):
    """A page was asked for without a live browser session: the browser is sent to the login page."""

    default_message = "this page needs you to log in"
    default_remedy = "log in with your username, password and one-time code"


class AssetsMissing(SCITIError):
    """The front-end libraries were not installed next to SCITI."""

    code = "web_assets_missing"
    http_status = 500
    default_remedy = "run `npm ci` in the project folder, then `python -m sciti.web.assets`"


__all__ = ["AssetsMissing", "LoginNeeded"]
