"""The model registry: versions in the operational database, artefacts in the object store.

A version is written once (content-addressed artefact, metrics, features, parameters, snapshot).
Promotion changes only its status, demoting the previous holder of the role to ``retired``, and
appends a ``model_events`` row and an audit entry.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from sciti.access.audit import audit
from sciti.lake import ObjectStore
from sciti.ops import migrate, session_scope
from sciti.ops.model_tables import ModelEvent, ModelVersion
from sciti.risk.errors import ModelLoadError, ModelNotFound
from sciti.risk.models.scoring import ScoringModel
from sciti.settings import Settings

ROLES = ("champion", "challenger")
STATUSES = ("candidate", "champion", "challenger", "retired")


def _store(settings: Settings) -> ObjectStore:
    return ObjectStore(settings.resolved_object_store)


def version_dict(row: ModelVersion) -> dict[str, Any]:
    return {
        "version": row.version,
        "kind": row.kind,
        "label": row.label,
        "algorithm": row.algorithm,
        "status": row.status,
        "features": row.features,
        "params": row.params,
        "metrics": row.metrics,
        "snapshot_id": row.snapshot_id,
        "lake_snapshots": row.lake_snapshots or {},
        "train_since": row.train_since,
        "train_until": row.train_until,
        "rows": row.rows,
        "artefact_key": row.artefact_key,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def new_version_id(kind: str, label: str) -> str:
    now = datetime.now(UTC)
    return f"{kind}-{label}-{now:%Y%m%d-%H%M%S}-{now.microsecond:06d}"


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as null: JSON has no such numbers and PostgreSQL refuses
    them (a metric that cannot be computed, such as revenue@k% without revenue data, is NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def register(
    settings: Settings,
    model: ScoringModel,
    *,
    metrics: dict[str, Any],
    snapshot_id: str,
    since: str | None,
    until: str | None,
    rows: int,
    actor: str,
    lake_snapshots: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Store the artefact and the registry row (status ``candidate``); returns the row as a dict."""
    key = _store(settings).put(model.to_artefact())
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        row = ModelVersion(
            version=model.version,
            kind=model.kind,
            label=model.label,
            status="candidate",
            features=model.feature_names,
            params=model.meta.get("params", {}),
            metrics=json_safe(metrics),
            snapshot_id=snapshot_id,
            lake_snapshots={k: v for k, v in (lake_snapshots or {}).items() if v},
            train_since=since,
            train_until=until,
            rows=rows,
            artefact_key=key,
            created_by=actor,
        )
        s.add(row)
        s.flush()  # the version row first: events reference it
        s.add(ModelEvent(version=model.version, action="trained", actor=actor))
        audit(
            s,
            actor=actor,
            action="model.train",
            target=f"model:{model.version}",
            details={"kind": model.kind, "label": model.label, "rows": rows, "snapshot_id": snapshot_id},
        )
        s.flush()
        return version_dict(row)


def trained_on_snapshots(settings: Settings) -> dict[str, set[int]]:
    """Per lake table, the snapshots registered models were trained on: lake upkeep keeps them,
    so a model's training data can be read back as it was (privacy retention still deletes)."""
    migrate(settings.resolved_ops_db_url)
    found: dict[str, set[int]] = {}
    with session_scope(settings.resolved_ops_db_url) as s:
        for snapshots in s.scalars(select(ModelVersion.lake_snapshots)):
            for ident, snapshot_id in (snapshots or {}).items():
                found.setdefault(ident, set()).add(int(snapshot_id))
    return found


def list_versions(settings: Settings, kind: str | None = None) -> list[dict[str, Any]]:
    """Every version (newest first), optionally of one kind."""
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        q = select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.version.desc())
        if kind:
            q = q.where(ModelVersion.kind == kind)
        return [version_dict(r) for r in s.scalars(q)]


def get_version(settings: Settings, version: str) -> dict[str, Any]:
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        row = s.get(ModelVersion, version)
        if row is None:
            raise ModelNotFound(f"model version {version!r} does not exist")
        out = version_dict(row)
        out["events"] = [
            {"action": e.action, "actor": e.actor, "reason": e.reason, "at": e.at.isoformat()}
            for e in s.scalars(
                select(ModelEvent).where(ModelEvent.version == version).order_by(ModelEvent.id)
            )
        ]
        return out


def promote(
    settings: Settings, version: str, role: str = "champion", *, actor: str, reason: str = ""
) -> dict[str, Any]:
    """Make ``version`` the champion (or challenger) of its kind; the previous holder is retired."""
    if role not in ROLES + ("retired",):
        raise ModelNotFound(
            f"role {role!r} is not a model role", remedy="use champion, challenger or retired"
        )
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        row = s.get(ModelVersion, version)
        if row is None:
            raise ModelNotFound(f"model version {version!r} does not exist")
        if role in ROLES:
            for other in s.scalars(
                select(ModelVersion).where(
                    ModelVersion.kind == row.kind,
                    ModelVersion.status == role,
                    ModelVersion.version != version,
                )
            ):
                other.status = "retired"
                s.add(
                    ModelEvent(
                        version=other.version, action="retired", actor=actor, reason=f"replaced by {version}"
                    )
                )
        row.status = role
        s.add(ModelEvent(version=version, action=role, actor=actor, reason=reason))
        audit(
            s,
            actor=actor,
            action="model.promote",
            target=f"model:{version}",
            details={"role": role, "kind": row.kind, "reason": reason},
        )
        s.flush()
        return version_dict(row)


def load_model(settings: Settings, kind: str, role: str = "champion") -> ScoringModel | None:
    """The model holding ``role`` for ``kind``; None when there is none.

    Raises ModelLoadError when the registry names a model whose artefact is missing or broken.
    """
    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        row = s.scalars(
            select(ModelVersion)
            .where(ModelVersion.kind == kind, ModelVersion.status == role)
            .order_by(ModelVersion.created_at.desc())
        ).first()
        if row is None:
            return None
        version, key = row.version, row.artefact_key
    return load_artefact(settings, version, key)


def champions(settings: Settings) -> dict[str, tuple[str, str]]:
    """Per kind, the champion's (version, artefact key), the newest as ``load_model`` picks it.

    One indexed query and no schema check, so a running engine can ask it every few seconds."""
    found: dict[str, tuple[str, str]] = {}
    with session_scope(settings.resolved_ops_db_url) as s:
        rows = s.execute(
            select(ModelVersion.kind, ModelVersion.version, ModelVersion.artefact_key)
            .where(ModelVersion.status == "champion")
            .order_by(ModelVersion.created_at.desc())
        )
        for kind, version, key in rows:
            found.setdefault(kind, (version, key))
    return found


def load_version(settings: Settings, version: str) -> ScoringModel:
    info = get_version(settings, version)
    return load_artefact(settings, version, info["artefact_key"])


def load_artefact(settings: Settings, version: str, key: str) -> ScoringModel:
    store = _store(settings)
    try:
        with store.open(key) as fh:
            data = fh.read()
        if hashlib.sha256(data).hexdigest() != key:
            raise ValueError("the stored bytes do not match their key (damaged)")
        model = ScoringModel.from_artefact(data)
    except Exception as exc:  # any failure here means the artefact cannot serve: say which and why
        raise ModelLoadError(f"model {version} cannot be loaded from object {key}: {exc}") from exc
    if model.version != version:
        raise ModelLoadError(f"object {key} holds model {model.version}, not {version}")
    return model
