"""sciti CLI: ``sciti user add|list|passwd|disable|enable|token`` (account administration).

Secrets (one-time passwords, tokens) are printed once on stdout and never logged or stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from sciti.access import (
    active_token_count,
    create_user,
    get_user,
    issue_token,
    list_users,
    reset_password,
    set_disabled,
)
from sciti.access.roles import all_roles
from sciti.cli.common import console, fail
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError

user_app = typer.Typer(
    help="Accounts: add, list, reset passwords, disable, issue tokens.", no_args_is_help=True
)
_DURATION = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$", re.IGNORECASE)
_MINUTES = {"": 1, "m": 1, "h": 60, "d": 1440}


@contextmanager
def _ops() -> Iterator[Session]:
    """A session on the operational DB; errors become one-line reasons with a remedy."""
    from sciti.ops import session_scope

    try:
        with session_scope(get_settings().resolved_ops_db_url) as session:
            yield session
    except SCITIError as exc:
        fail(exc)
    except (OperationalError, ProgrammingError):
        fail(
            "the operational database is not initialised or not reachable: run `sciti init`, check ops_db_url"
        )


def parse_ttl(text: str) -> int:
    """'30m', '8h', '90d' or plain minutes -> minutes."""
    m = _DURATION.match(text)
    if not m or int(m.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration: use e.g. 30m, 8h or 90d")
    return int(m.group(1)) * _MINUTES[m.group(2).lower()]


def _show_secret(title: str, lines: str) -> None:
    console.print(Panel(lines, title=title, expand=False), highlight=False)


@user_app.command("add")
def add(
    name: str = typer.Argument(..., help="Username (letters, digits, . _ @ -)."),
    role: list[str] = typer.Option(..., "--role", "-r", help=f"Role, repeatable: {', '.join(all_roles())}."),
    office: str | None = typer.Option(None, "--office", help="Customs office code the user belongs to."),
    display_name: str = typer.Option("", "--display-name", help="Full name shown in the UI."),
    service: bool = typer.Option(
        False, "--service", help="Service account: no password, only tokens (e.g. a Prometheus scraper)."
    ),
) -> None:
    """Create an account; prints a one-time password (changed at first login)."""
    with _ops() as session:
        user, password = create_user(
            session, name, role, office_code=office, display_name=display_name, service=service
        )
        username, roles = user.username, ", ".join(user.roles)
    console.print(f"created user [bold]{username}[/] ({roles})", highlight=False)
    if password:
        _show_secret(
            "one-time password (shown once)",
            f"user:     {username}\npassword: {password}\n\nThe user must change it at first login "
            "(POST /api/v1/auth/password).",
        )
    else:
        console.print(f"service account: issue a token with `sciti user token {username} --ttl 90d`")


@user_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="JSON instead of a table.")) -> None:
    """List accounts with their roles and state."""
    with _ops() as session:
        rows: list[dict[str, Any]] = [
            {
                "username": u.username,
                "display_name": u.display_name,
                "roles": list(u.roles or []),
                "office": u.office_code,
                "state": "disabled"
                if u.disabled
                else ("must change password" if u.must_change_password else "active"),
                "password": u.password_hash is not None,
                "tokens": active_token_count(session, u.id),
                "last_login": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in list_users(session)
        ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("user", "name", "roles", "office", "state", "tokens", "last login")
    for r in rows:
        table.add_row(
            r["username"],
            r["display_name"],
            ", ".join(r["roles"]),
            r["office"] or "",
            r["state"],
            str(r["tokens"]),
            r["last_login"] or "never",
        )
    console.print(table)


@user_app.command("passwd")
def passwd(name: str = typer.Argument(..., help="Username.")) -> None:
    """Reset a password: prints a new one-time password, forces a change, revokes the user's tokens."""
    with _ops() as session:
        password = reset_password(session, name)
        username = get_user(session, name).username
    _show_secret(
        "one-time password (shown once)",
        f"user:     {username}\npassword: {password}\n\nThe user must change it at next login; "
        "their tokens were revoked.",
    )


@user_app.command("disable")
def disable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Disable an account and revoke its tokens."""
    with _ops() as session:
        revoked = set_disabled(session, name, True)
    console.print(f"disabled {name}; {revoked} token(s) revoked", highlight=False)


@user_app.command("enable")
def enable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Enable a disabled account again."""
    with _ops() as session:
        set_disabled(session, name, False)
    console.print(f"enabled {name}", highlight=False)


@user_app.command("token")
def token(
    name: str = typer.Argument(..., help="Username."),
    ttl: str | None = typer.Option(
        None, "--ttl", help="Lifetime: 30m, 8h, 90d (default: token_ttl_minutes)."
    ),
    label: str = typer.Option("cli", "--label", help="What the token is for, e.g. prometheus."),
) -> None:
    """Issue a bearer token for a user; prints it once."""
    minutes = parse_ttl(ttl) if ttl else get_settings().token_ttl_minutes
    with _ops() as session:
        user = get_user(session, name)
        if user.disabled:
            fail(f"user {user.username!r} is disabled (enable it first with `sciti user enable`)")
        issued = issue_token(session, user, minutes, label=label)
    _show_secret(
        "bearer token (shown once)",
        f"user:    {issued.username}\nexpires: {issued.expires_at.isoformat(timespec='seconds')}\n"
        f"token:   {issued.token}\n\nSend it as 'Authorization: Bearer <token>'.",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
