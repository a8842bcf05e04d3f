"""The engine's inputs from the other risk parts: active rules, champion models, reference tables.

Imported lazily, through these few functions, so the engine (and the API) start even while a part
is missing or broken; what fails is said in the log, in ``/metrics`` and in every answer.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sciti.ops import session_scope
from sciti.risk.engine.errors import EngineError
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine")


def active_rules(settings: Settings, kind: str, at: datetime) -> list[Any]:
    """The approved rules of ``kind`` in force at ``at`` (compiled, contract 3)."""
    from sciti.risk import rules

    with session_scope(settings.resolved_ops_db_url) as session:
        return list(rules.active_rules(session, kind, at))


def load_model(settings: Settings, kind: str) -> tuple[Any | None, str | None]:
    """(champion model or None, why it is missing when it should be there)."""
    try:
        from sciti.risk import models
    except ImportError as exc:
        return None, f"the model registry is not installed ({exc})"
    try:
        return models.load_model(settings, kind, role="champion"), None
    except Exception as exc:  # a broken artefact must not stop the engine: rules only, and say so
        log.error("champion model for %s failed to load: %s", kind, exc, exc_info=exc)
        return None, str(exc)


def load_reference(settings: Settings) -> Any:
    """The saved feature reference tables, else ones computed from the lake now."""
    try:
        from sciti.risk import features
    except ImportError as exc:
        raise EngineError(
            f"the risk features are not installed ({exc})", remedy="install SCITI with its risk package"
        ) from None
    from sciti.risk.errors import FeatureError

    try:
        return features.load_reference(settings)
    except FeatureError:  # none saved yet: compute from the lake as it is now
        log.warning("no saved risk reference tables: building them from the lake")
        return features.build_reference(settings)


def compute_one(kind: str, record: dict[str, Any], ref: Any) -> dict[str, Any]:
    from sciti.risk import features

    return features.compute_one(kind, record, ref)


def compute_batch(kind: str, table: Any, ref: Any) -> Any:
    from sciti.risk import features

    return features.compute_batch(kind, table, ref)


def lake_records(settings: Settings, kind: str, since: Any = None, until: Any = None) -> Any:
    from sciti.risk import features

    return features.lake_records(settings, kind, since=since, until=until)


__all__ = ["active_rules", "compute_batch", "compute_one", "lake_records", "load_model", "load_reference"]
