"""The routes an app really serves, with their full paths, whatever the FastAPI version.

Recent FastAPI keeps included routers as nested objects in ``app.routes``; older versions flatten
them. Tests (authentication on every endpoint) and metrics (route templates) need the flat list.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, routing


@dataclass(frozen=True)
class ServedRoute:
    path: str
    methods: frozenset[str]
    name: str
    route: object  # the route object handlers see in scope["route"]


def served_routes(app: FastAPI) -> list[ServedRoute]:
    """Every HTTP route of ``app`` with its full path (prefixes applied) and methods."""
    contexts = getattr(routing, "iter_route_contexts", None)
    items = contexts(app.routes) if contexts is not None else app.routes
    out = []
    for item in items:
        path = getattr(item, "path", None)
        methods = getattr(item, "methods", None)
        if path is None or methods is None:  # websockets, mounts
            continue
        original = getattr(item, "original_route", item)
        out.append(ServedRoute(path, frozenset(methods), getattr(item, "name", "") or "", original))
    return out


def route_template(app: FastAPI, route: object) -> str | None:
    """The full path template of the route object found in a request's scope."""
    table = getattr(app.state, "_sciti_route_paths", None)
    if table is None:
        table = {id(r.route): r.path for r in served_routes(app)}
        app.state._sciti_route_paths = table
    return table.get(id(route)) or getattr(route, "path", None)
