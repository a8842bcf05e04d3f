"""sciti CLI: data commands (placeholder until its owner fills it)."""

import typer


def register(app: typer.Typer) -> None:
    pass
