"""What every command needs: settings, the lake, the operational DB, the account it acts as, and
one way to fail."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError

from sciti.errors import SCITIError
from sciti.lake import Lake, open_lake
from sciti.settings import Settings, SettingsError, get_settings

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    """The process's settings; a wrong one ends the command with one line naming it.

    sciti.toml is checked whole once per loaded settings: its tables too (``[sso]``), which their
    own classes read only when used, so a misspelt key there is not found at a first login.
    """
    loaded, problems = _checked(get_settings)
    if loaded is not None and _TABLES_CHECKED.get("for") is not loaded:
        problems = _checked(_sso_settings, table="sso")[1]
        if problems is None:
            _TABLES_CHECKED["for"] = loaded
    if loaded is not None and problems is None:
        return loaded
    fail(f"invalid settings: {problems}")


_TABLES_CHECKED: dict[str, Settings] = {}  # "for": the settings whose sciti.toml tables were checked


def _checked(load: Callable[[], T], table: str | None = None) -> tuple[T | None, str | None]:
    """What ``load`` returns, or the one line that says why it could not."""
    try:
        return load(), None
    except ValidationError as exc:  # one line per wrong setting, named as the operator sets it
        return None, "; ".join(_setting_problem(e, table) for e in exc.errors(include_context=False))
    except SettingsError as exc:  # sciti.toml unreadable, or a name that is no setting
        return None, str(exc)
    except SCITIError as exc:  # a table's own check (an unknown role in [sso] role_map)
        where = f"[{table}] (SCITI_{table.upper()}_* or [{table}] in sciti.toml): " if table else ""
        return None, f"{where}{exc}"


def _sso_settings() -> object:
    from sciti.access.sso import SsoSettings

    return SsoSettings()


def _setting_problem(error: Any, table: str | None = None) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    name = str(error["loc"][0])
    if table is not None:
        return (
            f"[{table}] {name} (SCITI_{table.upper()}_{name.upper()} or [{table}] in sciti.toml): {message}"
        )
    return f"{name} (SCITI_{name.upper()} or sciti.toml): {message}"


def lake(s: Settings | None = None) -> Lake:
    s = s or settings()
    return open_lake(s.resolved_catalog_uri, s.resolved_warehouse)


def fail(error: BaseException | str, code: int = 1) -> NoReturn:
    """Exit non-zero with a one-line reason (and the remedy, when we know one)."""
    # escape: a reason may name a table of sciti.toml ("[sso]"), which is not markup.
    err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_or_fail(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except SCITIError as exc:
        fail(exc)


def acting_account(user: str, permission: str) -> tuple[str, tuple[str, ...]]:
    """The named account the CLI acts as, and its roles; it must exist, be usable (not disabled,
    expired or locked) and hold ``permission`` (fails with a one-line reason otherwise). See
    docs/decisions/0024 and 0082."""
    from sciti.access import permissions_of
    from sciti.ops import migrate

    if not user:
        fail(f"give --user NAME (or SCITI_USER): {permission} is recorded under a named account")
    migrate(settings().resolved_ops_db_url)
    roles = tuple(usable_account(user).roles or ())
    if permission not in permissions_of(roles):
        fail(f"account {user!r} lacks the {permission} permission: ask an administrator for a role with it")
    return user, roles


# -- the account the CLI acts as (--user / SCITI_USER) ------------------------------------------
ACTING_ACCOUNT_ENV = "SCITI_USER"


def usable_account(username: str, *, command: str | None = None) -> Any:
    """The account (``sciti.ops.User``, detached) the CLI may act as now; fails otherwise.

    The same states end a token or a session at once (``account_usable``): disabled, expired, or
    locked after failed logins. A refusal is audited (``cli.refused``, source ``cli``).
    """
    from sciti.access import account_state, find_user
    from sciti.access.accounts import as_utc
    from sciti.access.audit import audit
    from sciti.ops import session_scope

    with session_scope(settings().resolved_ops_db_url) as session:
        row = find_user(session, username)
        state = "unknown" if row is None else account_state(session, row)
        if state in ("active", "must_change_password"):  # the CLI does not use the password
            session.expunge(row)
            return row
        audit(
            session,
            actor=username.strip().lower()[:150],
            action="cli.refused",
            source="cli",
            outcome="refused",
            details={"reason": f"{state} account", **({"command": command} if command else {})},
        )
        until = {"expired": row.expires_at, "locked": row.locked_until} if row is not None else {}
    when = as_utc(until.get(state))
    reason = _STATE_REASON.get(state, lambda name, _: f"is {state} and cannot act (see `sciti user list`)")
    fail(f"account {username!r} {reason(username, when)}")


def _day(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else "?"


def _minute(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC") if when else "?"


_STATE_REASON: dict[str, Callable[[str, datetime | None], str]] = {
    "unknown": lambda name, _: "does not exist (see `sciti user list`; create it with `sciti user add`)",
    "disabled": lambda name, _: (
        f"is disabled and cannot act (an administrator enables it with `sciti user enable {name}`)"
    ),
    "expired": lambda name, when: (
        f"expired on {_day(when)} and cannot act (an administrator extends it with "
        f"`sciti user expire {name} --on YYYY-MM-DD` or `--never`)"
    ),
    "locked": lambda name, when: (
        f"is locked after failed logins until {_minute(when)} and cannot act (wait, or an "
        f"administrator runs `sciti user unlock {name}`)"
    ),
}


def guard_acting_accounts(group: Any, path: str = "sciti") -> None:
    """Check the acting account of every command under ``group`` (a Typer group) before it runs.

    A command acts as a named account through an option read from ``SCITI_USER`` (``--user``);
    whichever command it is, and however it later uses the name, that account must be usable.
    Commands still check their own permissions. A command without a name given is left to say
    what it needs.
    """
    for name, command in getattr(group, "commands", {}).items():
        if hasattr(command, "commands"):  # a sub-group
            guard_acting_accounts(command, f"{path} {name}")
            continue
        params = [p.name for p in command.params if _acting(p) and p.name]
        callback = command.callback
        if params and callback is not None and not getattr(callback, "acting_guard", False):
            command.callback = _guarded(callback, params[0], f"{path} {name}")


def _acting(param: Any) -> bool:
    env = getattr(param, "envvar", None)
    return env == ACTING_ACCOUNT_ENV or (isinstance(env, list | tuple) and ACTING_ACCOUNT_ENV in env)


def _guarded(callback: Callable[..., Any], param: str, command: str) -> Callable[..., Any]:
    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        user = kwargs.get(param)
        if isinstance(user, str) and user:
            usable_account(user, command=command)
        return callback(*args, **kwargs)

    run.acting_guard = True  # type: ignore[attr-defined]
    return run


# -- a database that cannot be reached ----------------------------------------------------------
_DATABASES = (
    ("operational database", "ops_db_url (SCITI_OPS_DB_URL)"),
    ("catalogue", "catalog_uri (SCITI_CATALOG_URI)"),
)


def database_problem(exc: DBAPIError) -> SCITIError | None:
    """One line (and the remedy) for a database that cannot be reached or is not initialised;
    ``None`` for any other database error (a bug: its traceback is worth more than a guess).

    Names the setting to check and shows its URL without the password; the driver's reason is
    cut to its first line, and the password is taken out of it too.
    """
    s = settings()
    connecting = exc.statement is None or exc.connection_invalidated
    if not connecting and not _missing_table(exc):
        return None
    configured = (make_url(s.resolved_ops_db_url), make_url(s.resolved_catalog_uri))
    url = _failed_url(exc)
    if url is None:  # not found on the stack: the catalogue is opened through pyiceberg
        url = configured[1] if _through(exc, "pyiceberg") else configured[0]
    matches = [db for db, setting in zip(_DATABASES, configured, strict=True) if _same(url, setting)]
    which = " and ".join(name for name, _ in matches) or "database"
    setting = " and ".join(env for _, env in matches or _DATABASES)
    shown, reason = url.render_as_string(hide_password=True), _reason(exc, url)
    if not connecting:
        return SCITIError(
            f"the {which} at {shown} is not initialised ({reason})",
            remedy=f"run `sciti init`, or check that {setting} names the instance's database",
        )
    where = (
        "that its folder exists and is writable (`sciti init` creates an instance)"
        if url.get_backend_name() == "sqlite"
        else "that the database server is running and reachable from here"
    )
    return SCITIError(f"cannot reach the {which} at {shown}: {reason}", remedy=f"check {setting} and {where}")


def _missing_table(exc: DBAPIError) -> bool:
    orig = exc.orig
    return type(orig).__name__ == "UndefinedTable" or str(orig).startswith("no such table")


def _failed_url(exc: BaseException) -> URL | None:
    """The URL of the engine the error came from: the innermost one on the traceback."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, Engine):
                found = value.url
            elif isinstance(value, Connection):
                found = value.engine.url
        tb = tb.tb_next
    return found


def _through(exc: BaseException, package: str) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(package):
            return True
        tb = tb.tb_next
    return False


def _same(a: URL, b: URL) -> bool:
    return a.render_as_string(hide_password=False) == b.render_as_string(hide_password=False)


def _reason(exc: DBAPIError, url: URL) -> str:
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    reason = lines[0].strip()
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason[:300]
