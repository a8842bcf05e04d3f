"""Connector functions: a small Python function beside a connector's YAML, for shapes YAML cannot map.

A record-style JSON Lines connector may name one in its options::

    format: jsonl
    kinds: [road_cargo_info, consignment]
    options: {records: "road_cargo.py:records"}

The file lives in the connector's own folder. The function takes one line's JSON object and
returns its canonical records by kind (``{"consignment": [{...}, ...]}``); the runner validates,
links and stores them exactly as for any record-style reader. A ``ValueError`` it raises
quarantines that line with the message as the reason. Connector folders are configuration that
administrators control, like the YAML itself: the code runs with the server's rights.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sciti.acquire.errors import ConnectorError

RecordsFunction = Callable[[dict[str, Any]], dict[str, Any]]
_loaded: dict[tuple[str, float, str], RecordsFunction] = {}


def load_function(folder: Path | None, spec: str, *, connector: str) -> RecordsFunction:
    """The function ``FILE.py:NAME`` from the connector's folder (loaded once per file version)."""
    file, _, name = spec.partition(":")
    if folder is None or not file.endswith(".py") or not name.isidentifier():
        raise ConnectorError(
            f"connector {connector}: function {spec!r} cannot be loaded",
            remedy="write it as FILE.py:NAME, a file in the connector's own folder",
        )
    path = (Path(folder) / file).resolve()
    if path.parent != Path(folder).resolve() or not path.is_file():
        raise ConnectorError(
            f"connector {connector}: no file {file} in {folder}",
            remedy="put the function's file beside connector.yaml",
        )
    key = (str(path), path.stat().st_mtime, name)
    if key not in _loaded:
        module_spec = importlib.util.spec_from_file_location(f"sciti_connector_{path.stem}", path)
        if module_spec is None or module_spec.loader is None:
            raise ConnectorError(f"connector {connector}: {path} is not a Python module")
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise ConnectorError(
                f"connector {connector}: {file} does not load: {type(exc).__name__}: {exc}",
                remedy=f"fix {path}",
            ) from None
        function = getattr(module, name, None)
        if not callable(function):
            raise ConnectorError(
                f"connector {connector}: {file} has no function {name}", remedy=f"define {name} in {path}"
            )
        _loaded[key] = function
    return _loaded[key]
