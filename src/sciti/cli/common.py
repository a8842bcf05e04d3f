"""What every command needs: settings, the lake, the operational DB, and one way to fail."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from sciti.errors import SCITIError
from sciti.lake import Lake, open_lake
from sciti.settings import Settings, get_settings

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    return get_settings()


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
