"""sciti CLI: ``init`` (create an instance) and ``serve`` (run the API server)."""

from __future__ import annotations

import getpass
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.panel import Panel
from sqlalchemy import inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from sciti import __version__
from sciti.access import audit, create_user
from sciti.cli.common import console, database_problem, fail, lake
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError
from sciti.logs import setup_logging
from sciti.ops import User, get_engine, migrate, session_scope
from sciti.settings import Settings

log = logging.getLogger("sciti.cli")
ADMIN_USER = "admin"


@dataclass
class InitResult:
    home: Path
    admin_password: str | None = None  # shown once, never stored or logged
    ref_tables: dict[str, int] = field(default_factory=dict)  # ref table -> rows published
    notes: list[str] = field(default_factory=list)


def instance_initialised(settings: Settings) -> bool:
    """True once ``sciti init`` finished: the operational DB has an administrator."""
    url = settings.resolved_ops_db_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return False  # don't create an empty database file just by asking
    try:
        if not inspect(get_engine(url)).has_table("users"):
            return False
        with session_scope(url) as session:
            return any("administrator" in (u.roles or []) for u in session.scalars(select(User)))
    except Exception as exc:
        problem = database_problem(exc) if isinstance(exc, DBAPIError) else None
        raise problem or SCITIError(
            f"cannot open the operational database: {type(exc).__name__}",
            remedy="check ops_db_url (SCITI_OPS_DB_URL) and that the database server is running",
        ) from exc


def _publish_codelists(settings: Settings, result: InitResult) -> None:
    """Publish code lists to the ``ref`` zone when this build has the loader and the publisher."""
    model, lake_pkg = importlib.import_module("sciti.model"), importlib.import_module("sciti.lake")
    load = getattr(model, "load_codelists", None)
    if load is None:  # not re-exported yet: look in its module
        load = getattr(_maybe_import("sciti.model.codelists"), "load_codelists", None)
    publish = getattr(lake_pkg, "publish_ref", None)
    if load is None or publish is None:
        result.notes.append("code lists not published (this build has no code-list loader)")
        return
    lists = load(settings.codelists_dir)
    the_lake = lake(settings)
    for name, table in lists.as_tables().items():
        publish(the_lake, name, table)
        result.ref_tables[f"ref.{name}"] = table.num_rows


def _maybe_import(name: str) -> object | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def initialise(settings: Settings) -> InitResult:
    """Create (or finish creating) an instance. Every step is idempotent; the administrator is
    created last, so an interrupted init is completed by running it again."""
    result = InitResult(home=settings.home.resolve())
    for folder in (settings.home, settings.resolved_object_store, settings.resolved_drop_dir):
        folder.mkdir(parents=True, exist_ok=True)
    migrate(settings.resolved_ops_db_url)
    lake(settings).ensure_zones()
    _publish_codelists(settings, result)
    with session_scope(settings.resolved_ops_db_url) as session:
        existing = session.scalar(select(User).where(User.username == ADMIN_USER))
        if existing is None:
            _, result.admin_password = create_user(
                session, ADMIN_USER, ["administrator"], display_name="Administrator"
            )
            # The trail's first entry: who made the first account, as `sciti user add` records.
            audit(
                session,
                actor=f"cli:{getpass.getuser()}",
                action="user.create",
                target=f"user:{ADMIN_USER}",
                source="cli",
                details={"roles": ["administrator"], "by": "sciti init"},
            )
        elif "administrator" not in (existing.roles or []):
            existing.roles = sorted({*existing.roles, "administrator"})
            result.notes.append(f"user {ADMIN_USER!r} existed; given the administrator role")
    log.info("instance initialised", extra={"home": str(result.home)})
    return result


def init(
    if_missing: bool = typer.Option(
        False, "--if-missing", help="Do nothing (exit 0) if the instance already exists."
    ),
) -> None:
    """Create an instance: data folder, operational DB, lake zones, code lists, first administrator."""
    s = get_settings()
    try:
        if instance_initialised(s):
            # An instance made by an earlier version gets this version's schema (idempotent):
            # commands that read the registry ask for `sciti init` when the schema is behind.
            migrate(s.resolved_ops_db_url)
            if if_missing:
                console.print(
                    f"instance already initialised at {s.home.resolve()} (schema up to date)", highlight=False
                )
                return
            fail(
                f"instance already initialised at {s.home.resolve()} "
                "(use --if-missing to accept that, or `sciti user passwd admin` to reset the administrator)"
            )
        with console.status("initialising the instance ..."):
            result = initialise(s)
    except SCITIError as exc:
        fail(exc)
    console.print(f"[green]instance initialised[/] at {result.home}", highlight=False)
    for table, rows in result.ref_tables.items():
        console.print(f"  published {table}: {rows:,} rows", highlight=False)
    for note in result.notes:
        console.print(f"  note: {note}", highlight=False)
    if result.admin_password:
        console.print(
            Panel(
                f"user:     {ADMIN_USER}\npassword: {result.admin_password}\n\n"
                "This one-time password is shown only now. Change it at first login:\n"
                "  POST /api/v1/auth/password with JSON\n"
                '  {"username": "admin", "current_password": ..., "new_password": ...}',
                title="first administrator",
                expand=False,
            ),
            highlight=False,
        )


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options from ``trusted_proxies`` (decision 0082).

    Only a connection from a listed proxy may set the client's address (``X-Forwarded-For``,
    read from the right: the first address that is not a listed proxy) and scheme
    (``X-Forwarded-Proto``, which makes cookies Secure). With none listed the headers are not read
    at all: uvicorn's own default believes them from 127.0.0.1, and FORWARDED_ALLOW_IPS in the
    environment would widen that; neither applies here.
    """
    proxies = list(settings.trusted_proxies)
    return {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies}


def _clients_line(settings: Settings) -> str:
    if not settings.trusted_proxies:
        return "address of the connection (X-Forwarded-For ignored: no trusted_proxies)"
    return "X-Forwarded-For believed from " + ", ".join(settings.trusted_proxies)


def serve(
    host: str | None = typer.Option(None, help="Address to bind (default: settings host)."),
    port: int | None = typer.Option(None, help="Port to listen on (default: settings port)."),
) -> None:
    """Run the API server (and the long-lived acquisition transports) until stopped."""
    import uvicorn

    from sciti.api.app import create_app

    s = get_settings()
    host, port = host or s.host, port or s.port
    try:
        if not instance_initialised(s):
            fail(f"no SCITI instance at {s.home.resolve()} (run `sciti init` first)")
        lake(s)  # the catalogue too: one line now (the root command's), not a traceback per request
    except SCITIError as exc:
        fail(exc)
    setup_logging(s)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104 (display only)
    console.print(
        f"SCITI {__version__} serving {s.home.resolve()} on [bold]{url}[/]\n"
        f"  web app:       {url}/ui/  (log in as admin with the one-time password; you set a new one)\n"
        f"  API reference: {url}/api/v1/docs (Authorize: your username and password)\n"
        f"  log in:        curl -d username=admin -d password=... {url}/api/v1/auth/token\n"
        "  first login:   change the one-time password `sciti init` printed, via POST\n"
        f"                 {url}/api/v1/auth/password (lost it? `sciti user passwd admin`)\n"
        "  or a token:    sciti user token NAME   (then send 'Authorization: Bearer <token>')\n"
        f"  clients:       {_clients_line(s)}\n"
        "  stop:          Ctrl+C",
        highlight=False,
        soft_wrap=True,
    )
    # The acquisition transports, lake upkeep and personal-data retention run in the server's
    # background jobs process (lake_upkeep_every_hours, retention_every_hours: 0 leaves it to cron).
    from sciti.background import start_background_jobs

    background = start_background_jobs(s)
    config = uvicorn.Config(
        create_app(s, background=background),
        host=host,
        port=port,
        log_config=None,  # our JSON handler (setup_logging) receives uvicorn's records
        access_log=False,  # our middleware logs each request, without query strings
        server_header=False,
        **proxy_options(s),
    )
    server = _server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown, as uvicorn.run takes it
        pass
    finally:
        background.stop()
    if not server.started:
        fail(f"could not serve on {host}:{port} (see the log line above)")


def _server(config: Any) -> Any:
    """uvicorn's server, which on Ctrl+C (or systemd's stop) also stops the lake queries still
    running: uvicorn waits for open requests before the app's shutdown, and a long SQL query would
    hold it until its time limit (decision 0098). A stopped query answers 503 and is audited."""
    import uvicorn

    from sciti.lake.running import stop_running_queries

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            stop_running_queries()

    return Server(config)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
