"""Scale parameters and world data, loaded from the package's YAML files and checked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from sciti.demo.errors import DemoError

SCALES = ("tiny", "small", "medium", "large")


@dataclass(frozen=True)
class Scale:
    """Counts and rates of one world size. ``rates`` keys are documented in data/scales.yaml."""

    name: str
    params: dict[str, Any]

    def __getattr__(self, key: str) -> Any:
        if key == "params" or key.startswith("__"):  # while unpickling, before params exists
            raise AttributeError(key)
        try:
            return self.params[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def rates(self) -> dict[str, float]:
        return self.params["rates"]

    @property
    def start(self) -> date:
        return date.fromisoformat(str(self.params["start_date"]))


def _read(name: str) -> dict[str, Any]:
    text = resources.files("sciti.demo").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def load_scale(name: str, overrides: dict[str, Any] | None = None) -> Scale:
    """The parameters of scale ``name``; ``overrides`` replaces counts or (under "rates") rates."""
    doc = _read("scales.yaml")
    if name not in SCALES or name not in doc:
        raise DemoError(f"unknown scale {name!r}", remedy=f"use one of: {', '.join(SCALES)}")
    params = dict(doc[name])
    params["rates"] = {**doc["defaults"]["rates"], **params.get("rates", {})}
    for key, value in (overrides or {}).items():
        if key == "rates":
            params["rates"] = {**params["rates"], **value}
        elif key in params:
            params[key] = value
        else:
            raise DemoError(f"unknown scale parameter {key!r}", remedy="see sciti/demo/data/scales.yaml")
    for key, value in params["rates"].items():
        if not 0 <= float(value) <= (100 if key.endswith("per_30d") else 1):
            raise DemoError(f"rate {key!r} = {value} is out of range", remedy="rates are shares in [0, 1]")
    return Scale(name, params)


@lru_cache(maxsize=1)
def world_data() -> dict[str, Any]:
    """Places, names and goods of the world (data/world.yaml)."""
    return _read("world.yaml")
