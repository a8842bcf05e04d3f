"""``sciti risk ...``: rules (risk_rules), models and evaluation (risk_models), scoring (risk_scoring)."""

from __future__ import annotations

import importlib
import importlib.util

import typer

risk_app = typer.Typer(help="Risk engine: rules, models, scoring, evaluation, reports.", no_args_is_help=True)

# Each part registers its own commands on risk_app; they are written and owned separately.
PARTS = ("risk_rules", "risk_models", "risk_scoring")


def register(app: typer.Typer) -> None:
    for name in PARTS:
        module = f"sciti.cli.{name}"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(risk_app)
    app.add_typer(risk_app, name="risk")
