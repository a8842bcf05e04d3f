"""The ``sciti`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import typer
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from sciti.cli.common import database_problem, fail, guard_acting_accounts
from sciti.errors import ConfigError, SCITIError

INSTANCE_UMASK = 0o077


class SciTiGroup(TyperGroup):
    """The root command: what holds for every command, whoever wrote it (decision 0082).

    - A command that acts as a named account (``--user`` / ``SCITI_USER``) runs only if that
      account is usable now: not disabled, expired or locked.
    - An operational database or catalogue that cannot be reached (or is not initialised) ends
      any command with one line naming the setting to check, never a traceback nor a password.
    - So does a configuration problem no command caught (``ConfigError``), e.g. a retention file
      that cannot be read; a wrong setting ends it in ``common.settings``.
    - Files it creates are for the service account alone (``INSTANCE_UMASK``, decision 0084).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        guard_acting_accounts(self)

    def invoke(self, ctx: Any) -> Any:  # typer's own click Context
        # Everything SCITI writes (the lake's Parquet, the object store, ops.db, logs of its
        # children) holds personal data or secrets: readable by the service account only, as
        # PostgreSQL keeps its data folder. Child processes inherit it.
        os.umask(INSTANCE_UMASK)
        problem: SCITIError | None
        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            problem = database_problem(exc)
            if problem is None:
                raise
        except ConfigError as exc:  # a setting names something unusable (a retention file ...)
            problem = exc
        fail(problem)  # outside ``except``: the exit does not carry the driver's error along


app = typer.Typer(
    name="sciti",
    help="SCITI: open data and risk platform for customs administrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=SciTiGroup,
)

# One module per command group, each with ``register(app)``; listed here in help order.
GROUPS = ("server", "admin", "ingest", "data", "lake", "demo", "risk", "audit", "secrets", "privacy")

for _name in GROUPS:
    _module = f"sciti.cli.{_name}"
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module).register(app)


if __name__ == "__main__":
    app()
