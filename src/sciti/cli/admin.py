"""sciti CLI: ``sciti user add|list|passwd|disable|enable|expire|unlock|mfa-reset|dormant|token``.

Secrets (one-time passwords, tokens) are printed once on stdout and never logged or stored.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from sciti.access import (
    account_state,
    active_token_count,
    create_user,
    dormant_accounts,
    get_user,
    issue_token,
    list_users,
    mfa_enabled,
    reset_mfa,
    reset_password,
    set_disabled,
    set_expiry,
    unlock,
)
from sciti.access.audit import audit
from sciti.access.roles import all_roles
from sciti.cli.common import console, fail
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError

user_app = typer.Typer(
    help="Accounts: add, list, reset passwords and MFA, disable, expire, unlock, dormant report, tokens.",
    no_args_is_help=True,
)
# States as `user list` words them (the API uses the identifiers).
_STATE_WORDS = {"must_change_password": "must change password"}
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


def _audit(session: Session, action: str, username: str, **details: Any) -> None:
    """Administrative actions from the command line are audited as the operating-system user."""
    audit(
        session,
        actor=f"cli:{getpass.getuser()}",
        action=action,
        target=f"user:{username}",
        source="cli",
        details=details or None,
    )


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
        _audit(
            session,
            "user.create",
            username,
            roles=list(user.roles),
            office_code=user.office_code,
            service=service,
        )
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
                "state": _STATE_WORDS.get(state := account_state(session, u), state),
                "password": u.password_hash is not None,
                "tokens": active_token_count(session, u.id),
                "last_login": u.last_login_at.isoformat() if u.last_login_at else None,
            }
            for u in list_users(session)
        ]
        mfa = {u.username: mfa_enabled(session, u.id) for u in list_users(session)}
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("user", "name", "roles", "office", "state", "mfa", "tokens", "last login")
    for r in rows:
        table.add_row(
            r["username"],
            escape(r["display_name"] or ""),  # a person's words: brackets are text
            ", ".join(r["roles"]),
            r["office"] or "",
            r["state"],
            "yes" if mfa[r["username"]] else "no",
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
        _audit(session, "user.reset_password", username)
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
        _audit(session, "user.disable", name, tokens_revoked=revoked)
    console.print(f"disabled {name}; {revoked} token(s) revoked", highlight=False)


@user_app.command("enable")
def enable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Enable a disabled account again."""
    with _ops() as session:
        set_disabled(session, name, False)
        _audit(session, "user.enable", name)
    console.print(f"enabled {name}", highlight=False)


@user_app.command("expire")
def expire(
    name: str = typer.Argument(..., help="Username."),
    on: str | None = typer.Option(None, "--on", help="Date (and time, UTC) the account stops: 2026-12-31."),
    never: bool = typer.Option(False, "--never", help="Clear the expiry date."),
) -> None:
    """Set the date an account expires (a past date ends it now, with its tokens), or clear it."""
    if never == (on is not None):
        fail("give either --on DATE or --never")
    when = None
    if on is not None:
        try:
            when = datetime.fromisoformat(on)
        except ValueError:
            fail(f"{on!r} is not a date: use e.g. 2026-12-31 or 2026-12-31T18:00")
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
    with _ops() as session:
        set_expiry(session, name, when)
        _audit(session, "user.expire", name, expires_at=when.isoformat() if when else None)
    console.print(f"{name} expires {when.isoformat() if when else 'never'}", highlight=False)


@user_app.command("unlock")
def unlock_(name: str = typer.Argument(..., help="Username.")) -> None:
    """Lift the lockout after too many failed logins (the password is unchanged)."""
    with _ops() as session:
        unlock(session, name)
        _audit(session, "user.unlock", name)
    console.print(f"unlocked {name}", highlight=False)


@user_app.command("mfa-reset")
def mfa_reset(name: str = typer.Argument(..., help="Username.")) -> None:
    """Remove a user's second factor (lost phone); they log in with the password and enrol again."""
    with _ops() as session:
        had = reset_mfa(session, name)
        _audit(session, "mfa.reset", name, had_mfa=had)
    console.print(
        f"MFA of {name} removed; their tokens and sessions were ended" if had else f"{name} had no MFA",
        highlight=False,
    )


@user_app.command("dormant")
def dormant(
    days: int = typer.Option(90, "--days", min=1, help="No login (nor token use) in this many days."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """Report enabled accounts nobody has used for a while (candidates to disable)."""
    with _ops() as session:
        found = dormant_accounts(session, days)
    rows: list[dict[str, Any]] = [
        {
            "username": d.username,
            "roles": list(d.roles),
            "last_login": d.last_login_at.isoformat() if d.last_login_at else None,
            "days_idle": d.days_idle,
        }
        for d in found
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("user", "roles", "last login", "days idle", title=f"no login in {days} days")
    for r in rows:
        table.add_row(r["username"], ", ".join(r["roles"]), r["last_login"] or "never", str(r["days_idle"]))
    console.print(table)


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
        _audit(session, "token.issue", user.username, label=label, minutes=minutes)
    _show_secret(
        "bearer token (shown once)",
        f"user:    {issued.username}\nexpires: {issued.expires_at.isoformat(timespec='seconds')}\n"
        f"token:   {issued.token}\n\nSend it as 'Authorization: Bearer <token>'.",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
