"""sciti CLI: ``sciti secrets put|rotate|list|get-metadata|share|delete`` — credentials for other systems.

Values are read from standard input or a hidden prompt, never from an argument (arguments end up
in shell history and process listings), and are never printed. Changes are made as a named
account (``--user`` or ``SCITI_USER``, see decision 0024) and audited.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sciti.access.secrets import Caller, SecretMeta, SecretsService
from sciti.cli.common import acting_account, console, fail
from sciti.cli.common import settings as get_settings
from sciti.errors import SCITIError

secrets_app = typer.Typer(
    help="Secrets for other systems (database passwords, API keys, MQTT credentials): values never shown.",
    no_args_is_help=True,
)
User = Annotated[str, typer.Option("--user", "-u", envvar="SCITI_USER", help="Account the CLI acts as.")]
Name = Annotated[str, typer.Argument(help="Secret name, e.g. kcs-db.")]


def _caller(user: str, permission: str) -> Caller:
    name, roles = acting_account(user, permission)
    return Caller(name, roles)


def _value(name: str) -> str:
    if sys.stdin.isatty():
        value = typer.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value  # `echo x |` adds one newline
    if not value:
        fail(f"no value given for {name}: pipe it on stdin or type it at the prompt")
    return value


def _service() -> SecretsService:
    try:
        return SecretsService(get_settings())
    except SCITIError as exc:
        fail(exc)


def _show(meta: SecretMeta, verb: str) -> None:
    console.print(
        f"secret {meta.name} {verb}: version {meta.version}, shared with {', '.join(meta.shared_with)}",
        highlight=False,
    )


@secrets_app.command("put")
def put_cmd(
    name: Name,
    user: User = "",
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    share: Annotated[
        list[str] | None, typer.Option("--share", help="Role to share with (repeat); default your roles.")
    ] = None,
) -> None:
    """Create a secret or store a new version; the value comes from stdin or a hidden prompt."""
    caller = _caller(user, "secrets.manage")
    value = _value(name)
    try:
        meta = _service().put(
            name,
            value,
            caller,
            description=description,
            shared_with=tuple(share) if share else None,
            source="cli",
        )
    except SCITIError as exc:
        fail(exc)
    _show(meta, "stored")


@secrets_app.command("rotate")
def rotate_cmd(name: Name, user: User = "") -> None:
    """Store a new version of an existing secret (running connectors pick it up within the cache time)."""
    caller = _caller(user, "secrets.manage")
    value = _value(name)
    try:
        meta = _service().rotate(name, value, caller, source="cli")
    except SCITIError as exc:
        fail(exc)
    _show(meta, "rotated")


@secrets_app.command("share")
def share_cmd(
    name: Name,
    roles: Annotated[list[str], typer.Argument(help="Roles that may manage and read it.")],
    user: User = "",
) -> None:
    """Set the roles (groups) a secret is shared with."""
    caller = _caller(user, "secrets.manage")
    try:
        meta = _service().share(name, tuple(roles), caller, source="cli")
    except SCITIError as exc:
        fail(exc)
    _show(meta, "shared")


@secrets_app.command("delete")
def delete_cmd(
    name: Name, user: User = "", yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False
) -> None:
    """Delete a secret and every version of it."""
    caller = _caller(user, "secrets.manage")
    if not yes and not typer.confirm(f"delete secret {name} and all its versions?"):
        fail("not deleted")
    try:
        _service().delete(name, caller, source="cli")
    except SCITIError as exc:
        fail(exc)
    console.print(f"secret {name} deleted", highlight=False)


def _meta_json(meta: SecretMeta) -> str:
    doc = {**meta.__dict__}
    for key in ("created_at", "updated_at"):
        doc[key] = doc[key].isoformat() if doc[key] else None
    return json.dumps(doc)


@secrets_app.command("get-metadata")
def get_metadata_cmd(name: Name, user: User = "") -> None:
    """One secret's metadata as JSON (never its value)."""
    _caller(user, "secrets.list")
    try:
        meta = _service().metadata(name)
    except SCITIError as exc:
        fail(exc)
    typer.echo(_meta_json(meta))


@secrets_app.command("list")
def list_cmd(user: User = "", as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every secret's name, versions and who it is shared with (never values)."""
    _caller(user, "secrets.list")
    try:
        metas = _service().list()
    except SCITIError as exc:
        fail(exc)
    if as_json:
        for meta in metas:
            typer.echo(_meta_json(meta))
        return
    out = Table(title="Secrets")
    for col in ("name", "version", "shared with", "updated (UTC)", "by", "backend", "description"):
        out.add_column(col, overflow="fold")
    for m in metas:
        when = m.updated_at.strftime("%Y-%m-%d %H:%M") if m.updated_at else ""
        out.add_row(
            m.name,
            str(m.version),
            ", ".join(m.shared_with),
            when,
            m.updated_by,
            m.backend,
            escape(m.description),
        )
    console.print(out)


@secrets_app.command("rekey")
def rekey_cmd(user: User = "") -> None:
    """Local store only: replace the master key file and re-wrap every data key with the new key."""
    from sciti.access import audit
    from sciti.access.secrets.local import rotate_master_key
    from sciti.ops import session_scope

    caller = _caller(user, "secrets.manage")
    if "administrator" not in caller.roles:
        fail("only an administrator replaces the master key")
    s = get_settings()
    if s.secrets_backend != "local":
        fail("the master key belongs to the local store; OpenBao rotates its own (`bao operator rotate`)")
    try:
        old, new, count = rotate_master_key(s)
        with session_scope(s.resolved_ops_db_url) as session:
            audit(
                session,
                actor=caller.name,
                action="secret.rekey",
                source="cli",
                details={"old_key": old, "new_key": new, "versions": count},
            )
    except SCITIError as exc:
        fail(exc)
    console.print(
        f"master key {old} replaced by {new}: {count} versions re-wrapped. Back up "
        f"{s.resolved_secrets_key_file} now; database backups made before need the old key.",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")
