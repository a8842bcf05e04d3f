"""The ``sciti`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import importlib
import importlib.util

import typer

app = typer.Typer(
    name="sciti",
    help="SCITI: open data and risk platform for customs administrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# One module per command group, each with ``register(app)``; listed here in help order.
GROUPS = ("server", "admin", "ingest", "data", "lake", "demo", "risk", "audit", "secrets", "privacy")

for _name in GROUPS:
    _module = f"sciti.cli.{_name}"
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module).register(app)


if __name__ == "__main__":
    app()
