"""The ``sciti`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from sciti.cli import admin, data, demo, ingest, lake, server

app = typer.Typer(
    name="sciti",
    help="SCITI: open data and risk platform for customs administrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

for module in (server, admin, ingest, data, lake, demo):
    module.register(app)


if __name__ == "__main__":
    app()
