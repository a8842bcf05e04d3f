"""Training from the lake, the registry (ops DB + object store), promotion and loading."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.ops.model_tables import ModelEvent
from sciti.ops.policy_tables import AuditEntry
from sciti.risk.errors import ModelError, ModelLoadError, ModelNotFound
from sciti.risk.features import Reference, compute_batch, lake_records
from sciti.risk.features.reference import lake_snapshots, snapshot_hash
from sciti.risk.models import get_version, list_versions, load_model, promote, train, trained_on_snapshots
from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def instance(request, world_lake, tmp_path):
    """The world's lake with a fresh operational DB and object store (SQLite or PostgreSQL)."""
    ops = (
        f"sqlite:///{tmp_path / 'ops.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database")
    )
    s = make_settings(
        world_lake.home,
        ops_db_url=ops,
        object_store=str(tmp_path / "objects"),
        catalog_uri=world_lake.resolved_catalog_uri,
        warehouse=world_lake.resolved_warehouse,
    )
    migrate(s.resolved_ops_db_url)
    return s


def test_train_register_promote_load(instance) -> None:
    assert load_model(instance, "declaration") is None  # no champion yet: the engine runs rules only
    entry = train(instance, "declaration", actor="ana", params={"num_boost_round": 30})
    assert entry["status"] == "candidate" and entry["created_by"] == "ana"
    assert entry["rows"] > 100 and entry["snapshot_id"] and len(entry["artefact_key"]) == 64
    m = entry["metrics"]
    assert m["split_date"] and m["validation"]["n"] > 0
    assert "precision@5%" in m["validation"]["metrics"] and "revenue@5%" in m["validation"]["metrics"]
    assert m["validation_random"]["n"] < m["validation"]["n"]  # the unbiased subset, reported apart
    assert sum(src["rows"] for src in m["sources"].values()) == entry["rows"]  # per source system
    # The exact lake state it learnt from, table by table: the snapshots lake upkeep keeps.
    lake = open_lake(instance.resolved_catalog_uri, instance.resolved_warehouse)
    trained_on = entry["lake_snapshots"]
    assert set(trained_on) >= {"std.declarations", "std.declaration_items"}
    for ident, snapshot_id in trained_on.items():
        assert lake.table(ident).current_snapshot().snapshot_id == snapshot_id
    assert snapshot_hash(lake_snapshots(instance)) == entry["snapshot_id"]
    assert trained_on_snapshots(instance) == {i: {sid} for i, sid in trained_on.items()}

    promote(instance, entry["version"], "champion", actor="sup", reason="first model")
    model = load_model(instance, "declaration")
    assert model is not None and model.version == entry["version"]
    # The reference the model was trained with is saved for the real-time path.
    ref = Reference.load(instance)
    assert ref.snapshot_id == entry["snapshot_id"]
    feats = compute_batch("declaration", lake_records(instance, "declaration").slice(0, 50), ref)
    assert len(model.explain(feats, top=3)) == 50

    second = train(
        instance, "declaration", actor="ana", params={"num_boost_round": 20}, promote_to="champion"
    )
    assert second["status"] == "champion"
    assert get_version(instance, entry["version"])["status"] == "retired"  # one champion per kind
    assert [v["version"] for v in list_versions(instance, "declaration")] == [
        second["version"],
        entry["version"],
    ]
    history = get_version(instance, entry["version"])["events"]
    assert [e["action"] for e in history] == ["trained", "champion", "retired"]
    with session_scope(instance.resolved_ops_db_url) as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        assert actions.count("model.train") == 2 and actions.count("model.promote") == 2
        assert s.scalars(select(ModelEvent)).first() is not None


@pytest.fixture
def sqlite_instance(world_lake, tmp_path):
    s = make_settings(
        world_lake.home,
        ops_db_url=f"sqlite:///{tmp_path / 'ops.db'}",
        object_store=str(tmp_path / "objects"),
        catalog_uri=world_lake.resolved_catalog_uri,
        warehouse=world_lake.resolved_warehouse,
    )
    migrate(s.resolved_ops_db_url)
    return s


def test_a_broken_artefact_raises_model_load_error(sqlite_instance) -> None:
    instance = sqlite_instance
    entry = train(instance, "declaration", actor="ana", params={"num_boost_round": 5}, promote_to="champion")
    path = instance.resolved_object_store
    target = next(p for p in path.rglob(entry["artefact_key"]))
    target.write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match=entry["version"]):
        load_model(instance, "declaration")
    shutil.rmtree(path)
    with pytest.raises(ModelLoadError):
        load_model(instance, "declaration")


def test_refusals_name_the_problem(sqlite_instance) -> None:
    instance = sqlite_instance
    with pytest.raises(ModelNotFound):
        promote(instance, "no-such-version", actor="sup")
    with pytest.raises(ModelError, match="label"):
        train(instance, "declaration", actor="ana", label="nonsense")
    with pytest.raises(ModelError, match="inspection labels"):
        train(instance, "passenger", actor="ana")


def test_metrics_that_cannot_be_computed_are_stored_as_null(instance) -> None:
    """KCS has no revenue: revenue@k% is NaN, which JSON (and PostgreSQL) cannot hold."""
    import lightgbm as lgb
    import numpy as np

    from sciti.risk.models.registry import register
    from sciti.risk.models.scoring import ScoringModel

    rng = np.random.default_rng(0)
    x, y = rng.random((200, 2)), rng.integers(0, 2, 200)
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(x, y), num_boost_round=3)
    model = ScoringModel("declaration-fraud-nan", "declaration", "fraud", ["a", "b"], {}, booster)
    metrics = {"validation": {"metrics": {"revenue@1%": float("nan"), "auc": 0.7, "x": [float("inf")]}}}
    register(instance, model, metrics=metrics, snapshot_id="s", since=None, until=None, rows=200, actor="ana")
    stored = get_version(instance, "declaration-fraud-nan")["metrics"]["validation"]["metrics"]
    assert stored == {"revenue@1%": None, "auc": 0.7, "x": [None]}
