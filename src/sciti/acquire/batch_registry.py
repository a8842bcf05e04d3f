"""The batch registry as a data engineer reads it, and the check that it can be read.

Counts reconcile per batch: received = stored + quarantined + already stored (decision 0105).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.engine import make_url

from sciti.acquire.errors import NotInitialised
from sciti.ops import Batch, get_engine, session_scope
from sciti.ops.db import alembic_config
from sciti.settings import Settings


def _ready(settings: Settings) -> None:
    """Stop unless the operational database holds this version's schema. Only `sciti init` makes
    or upgrades it: a command that only reads the registry must not set up a database that was
    never initialised (an unreachable one still fails on connecting, with its own line)."""
    url = settings.resolved_ops_db_url
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    remedy = "run `sciti init`, or check that ops_db_url (SCITI_OPS_DB_URL) names the instance's database"
    file = Path(parsed.database) if parsed.get_backend_name() == "sqlite" and parsed.database else None
    if file is not None and str(file) != ":memory:" and not file.exists():  # asking must not create it
        raise NotInitialised(
            f"the operational database at {shown} is not initialised (there is no file {file.name})",
            remedy=remedy,
        )
    with get_engine(url).connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    needed, known = _schema_revisions()
    if current == needed:
        return
    if not current:
        raise NotInitialised(
            f"the operational database at {shown} is not initialised (it has no SCITI schema)", remedy=remedy
        )
    have, want = ", ".join(sorted(current)), ", ".join(sorted(needed))
    if not current <= known:  # made by a newer SCITI: `sciti init` of this one cannot help
        raise NotInitialised(
            f"the operational database at {shown} has a schema this version of SCITI does not know "
            f"(revision {have}; this version's newest is {want})",
            remedy="run the version of SCITI that made it",
        )
    raise NotInitialised(
        f"the operational database at {shown} is not initialised for this version of SCITI (its "
        f"schema is at revision {have}; this version needs {want})",
        remedy="run `sciti init` with this version to bring the schema up to date",
    )


@cache
def _schema_revisions() -> tuple[frozenset[str], frozenset[str]]:
    """This version's schema: the revisions it ends at, and every revision it knows (read from its
    migrations, not from a database)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads()), frozenset(r.revision for r in script.walk_revisions())


def ensure_ready(settings: Settings) -> None:
    """Stop unless the operational database holds this version's schema (see ``_ready``): the
    commands check it before they look up the account they act as."""
    _ready(settings)


def list_batches(
    settings: Settings, *, connector: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Batches, newest first, with their counts: received = stored + quarantined + already stored."""
    _ready(settings)
    query = select(Batch).order_by(Batch.started_at.desc()).limit(limit)
    if connector:
        query = query.where(Batch.connector == connector)
    with session_scope(settings.resolved_ops_db_url) as s:
        return [
            {
                "batch_id": b.id,
                "connector": b.connector,
                "unit": b.unit,
                "transport": b.transport,
                "status": b.status,
                "received": b.received,
                "stored": b.stored,
                "quarantined": b.quarantined,
                "already_stored": b.already_stored,
                "replaced": b.replaced,  # of the stored (on_change: replace, decision 0112)
                "reconciled": b.reconciled,
                "tables": b.tables,
                "resubmission_of": b.resubmission_of,
                "error": b.error,
                "started_at": b.started_at.isoformat() if b.started_at else None,
                "finished_at": b.finished_at.isoformat() if b.finished_at else None,
            }
            for b in s.scalars(query)
        ]
