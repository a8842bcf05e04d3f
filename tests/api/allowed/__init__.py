"""The allow/deny table, one module per area (core, risk, access ...), merged here.

Each module holds ``ALLOWED: dict[(method, path), frozenset[role]]``; a role not listed gets 403.
A path in two modules is an error, so the table stays one table.
"""

from __future__ import annotations

import importlib
import pkgutil

from tests.api.allowed.groups import EVERYONE


def merged() -> dict[tuple[str, str], frozenset[str]]:
    table: dict[tuple[str, str], frozenset[str]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "groups":
            continue
        part = importlib.import_module(f"{__name__}.{info.name}").ALLOWED
        twice = table.keys() & part.keys()
        assert not twice, f"endpoints listed twice in the allow table: {sorted(twice)}"
        table.update(part)
    return table


__all__ = ["EVERYONE", "merged"]
