"""The engine's inputs from the other risk parts: active rules, champion models, reference tables.

Imported lazily, through these few functions, so the engine (and the API) start even while a part
is missing or broken; what fails is said in the log, in ``/metrics`` and in every answer.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sciti.ops import migrate, session_scope
from sciti.risk.engine.errors import EngineError
from sciti.settings import Settings

log = logging.getLogger("sciti.risk.engine")


def active_rules(settings: Settings, kind: str, at: datetime) -> list[Any]:
    """The approved rules of ``kind`` in force at ``at`` (compiled, contract 3), their reasons in
    the settings' national currency (decision 0111)."""
    from sciti.risk import rules
    from sciti.risk.features.national import National

    with session_scope(settings.resolved_ops_db_url) as session:
        return list(rules.active_rules(session, kind, at, National.of(settings)))


def champions(settings: Settings, *, migrate_first: bool = False) -> dict[str, tuple[str, str]] | None:
    """Per kind, the champion's (version, artefact key) in the model registry; None without one.

    ``migrate_first`` at start-up only: the periodic check must stay one query."""
    try:
        from sciti.risk.models import registry
    except ImportError:
        return None
    if migrate_first:
        migrate(settings.resolved_ops_db_url)
    return registry.champions(settings)


def load_model(
    settings: Settings, kind: str, champion: tuple[str, str] | None = None
) -> tuple[Any | None, str | None]:
    """(the champion of ``kind``, or the given (version, artefact key), or None; why it is missing
    when it should be there). Failures are for the caller to log: it knows whether they are news.

    The model comes ready to score one row, so its first real-time answer does not pay the setup."""
    from sciti.errors import SCITIError
    from sciti.risk.engine.reasons import LoadFailure

    version = None if champion is None else champion[0]
    try:
        from sciti.risk import models
    except ImportError as exc:
        return None, LoadFailure(f"the model registry is not installed ({exc})", "model_load_error", version)
    try:
        if champion is None:
            model = models.load_model(settings, kind, role="champion")
        else:
            model = models.load_artefact(settings, *champion)
        if model is not None:
            prepare(model)
        return model, None
    except Exception as exc:  # a broken artefact must not stop the engine: rules only, and say so
        # Its code beside its words: a page says the line from the code (decision 0118).
        code = exc.code if isinstance(exc, SCITIError) else "model_load_error"
        return None, LoadFailure(str(exc), code, version)


# Written last by ``features.save_reference`` (after the tables it names): its one row says which
# reference is current.
REFERENCE_META = "risk.reference_meta"


class ReferenceWatch:
    """Which saved reference is current, read cheaply enough to ask at every rules check.

    One small catalog query per check (the meta table's current metadata file); the table's one row
    is read only when that file changed, i.e. after ``sciti risk reference build`` saved a new one.
    The id is the reference's snapshot id and build time: a rebuild over an unchanged lake is a new
    reference too (its code lists, parameters or watchlist may differ)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lake: Any = None
        self._location: str | None = None
        self._id: str | None = None

    def current(self) -> str | None:
        """The saved reference's id (None: none saved yet)."""
        from sciti.lake import LakeError, open_lake

        if self._lake is None:
            self._lake = open_lake(self.settings.resolved_catalog_uri, self.settings.resolved_warehouse)
        try:
            table = self._lake.table(REFERENCE_META)
        except LakeError:
            return None
        if table.metadata_location != self._location:
            rows = table.scan(selected_fields=("snapshot_id", "built_at")).to_arrow().to_pylist()
            self._id = reference_id(rows[0]["snapshot_id"], rows[0]["built_at"]) if rows else None
            self._location = table.metadata_location
        return self._id


def reference_id(snapshot_id: Any, built_at: Any) -> str:
    """A saved reference's id: its lake snapshot id and when it was built."""
    at = built_at.isoformat() if isinstance(built_at, datetime) else str(built_at)
    return f"{snapshot_id} built {at}"


def prepare(model: Any) -> None:
    """Set up the model's one-row calls (score and contributions) now, off the real-time path."""
    import numpy as np

    row = np.zeros((1, len(model.feature_names)))
    model.score(row)
    model.contributions(row)


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
    except FeatureError:  # none saved yet, or built for other settings: compute from the lake as it is now
        log.warning("no usable saved risk reference tables: building them from the lake")
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


__all__ = [
    "REFERENCE_META",
    "ReferenceWatch",
    "active_rules",
    "champions",
    "compute_batch",
    "compute_one",
    "lake_records",
    "load_model",
    "load_reference",
    "prepare",
    "reference_id",
]
