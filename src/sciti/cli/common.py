"""What every command needs: settings, the lake, the operational DB, and one way to fail."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from sciti.errors import SCITIError
from sciti.lake import Lake, open_lake
from sciti.settings import Settings, get_settings

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:  # one line per wrong setting, named as the operator sets it
        problems = "; ".join(_setting_problem(e) for e in exc.errors(include_context=False))
    fail(f"invalid settings: {problems}")  # outside ``except``: the exit does not carry the error along


def _setting_problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    name = str(error["loc"][0])
    return f"{name} (SCITI_{name.upper()} or sciti.toml): {message}"


def lake(s: Settings | None = None) -> Lake:
    s = s or settings()
    return open_lake(s.resolved_catalog_uri, s.resolved_warehouse)


def fail(error: BaseException | str, code: int = 1) -> NoReturn:
    """Exit non-zero with a one-line reason (and the remedy, when we know one)."""
    err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_or_fail(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except SCITIError as exc:
        fail(exc)


def acting_account(user: str, permission: str) -> tuple[str, tuple[str, ...]]:
    """The named account the CLI acts as, and its roles; it must exist, be enabled and hold
    ``permission`` (fails with a one-line reason otherwise). See docs/decisions/0024."""
    from sqlalchemy import select

    from sciti.access import permissions_of
    from sciti.ops import User, migrate, session_scope

    if not user:
        fail(f"give --user NAME (or SCITI_USER): {permission} is recorded under a named account")
    s = settings()
    migrate(s.resolved_ops_db_url)
    with session_scope(s.resolved_ops_db_url) as session:
        row = session.scalars(select(User).where(User.username == user)).first()
        if row is None or row.disabled:
            fail(f"account {user!r} does not exist or is disabled: create it with `sciti user add`")
        roles = tuple(row.roles or ())
    if permission not in permissions_of(roles):
        fail(f"account {user!r} lacks the {permission} permission: ask an administrator for a role with it")
    return user, roles
