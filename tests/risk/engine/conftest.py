"""A KCS instance (valid.csv through connectors/kcs) with approved rules and a trained model.

The model is trained here with the model package's own matrix and scoring classes on the lake's
features and labels, so these tests do not depend on the registry; the engine takes it as the
champion of ``declaration``. Tests that change an instance's registry or queue take one of their
module's own (``own_kcs``), and store models in its registry with ``registered``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from sciti.access import create_user
from sciti.acquire import Runner, load_connector
from sciti.ops import migrate, session_scope
from sciti.risk import features, rules
from sciti.risk.engine import Assessor, KindParts
from sciti.risk.models import register
from sciti.settings import Settings
from tests.conftest import make_settings

RULES = [
    {
        "id": "T-CN-DUTY",
        "title": "High duty on Chinese goods",
        "kind": "declaration",
        "when": "duty_rate > 8 and country_of_origin = 'CN'",
        "weight": 45,
        "reason": "Duty {duty_rate}% on goods of origin {country_of_origin}",
    },
    {
        "id": "T-HEAVY-CHEAP",
        "title": "Heavy and cheap",
        "kind": "declaration",
        "when": "net_mass_kg > 20000 and unit_value < 1",
        "lane": "red",
        "reason": "{net_mass_kg} kg declared at {unit_value:.2f} per kg",
    },
]


def approve(settings: Settings, rule: dict) -> None:
    with session_scope(settings.resolved_ops_db_url) as session:
        version = rules.create_rule(session, rule, actor="alice")
        rules.submit(session, rule["id"], version.version, actor="alice")
        rules.approve(session, rule["id"], version.version, actor="bob")


def build_instance(home: Path, shared_data: Path, **overrides) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    s = make_settings(home, **overrides)
    migrate(s.resolved_ops_db_url)
    (result,) = Runner(s).ingest_path(load_connector(s, "kcs"), shared_data / "kcs" / "valid.csv")
    assert result.status == "committed"
    with session_scope(s.resolved_ops_db_url) as session:
        create_user(session, "alice", ["analyst"], service=True)
        create_user(session, "bob", ["supervisor"], service=True)
    rules.clear_cache()
    for rule in RULES:
        approve(s, rule)
    features.save_reference(s, features.build_reference(s))
    return s


def train_model(settings: Settings, ref) -> object:
    from sciti.risk.models.matrix import fit_categories, model_columns, to_matrix
    from sciti.risk.models.scoring import ScoringModel

    recs = features.lake_records(settings, "declaration", labels=True)
    feats = features.compute_batch("declaration", recs, ref)
    numeric, categorical = model_columns("declaration")
    cats = fit_categories(feats, categorical)
    x = to_matrix(feats, numeric, cats)
    y = np.asarray([bool(v) for v in feats["fraud"].to_pylist()], dtype=np.float64)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "max_depth": 5,
        "verbose": -1,
        "num_threads": 1,
        "seed": 1,
    }
    booster = lgb.train(params, lgb.Dataset(x, y), 40)
    return ScoringModel("declaration-test-1", "declaration", "fraud", numeric, cats, booster, {})


@pytest.fixture(scope="session")
def kcs(tmp_path_factory, shared_data) -> Settings:
    return build_instance(tmp_path_factory.mktemp("engine") / "instance", shared_data)


@pytest.fixture(scope="session")
def kcs_model(kcs):
    return train_model(kcs, features.load_reference(kcs))


@pytest.fixture(scope="module")
def own_kcs(request: pytest.FixtureRequest, tmp_path_factory, shared_data) -> Settings:
    """A KCS instance of the test module's own, for tests that change what other modules would
    read: they promote, damage or retire champions in its registry, or post results to its queue."""
    name = request.module.__name__.rpartition(".")[2]
    return build_instance(tmp_path_factory.mktemp(name) / "instance", shared_data)


@pytest.fixture(scope="module")
def own_model(own_kcs):
    """A model trained on ``own_kcs`` as ``train_model`` trains one; not registered."""
    return train_model(own_kcs, features.load_reference(own_kcs))


def registered(settings: Settings, model, version: str) -> dict:
    """``model`` stored in the registry as ``version`` (a candidate, its own artefact)."""
    return register(
        settings,
        dataclasses.replace(model, version=version),
        metrics={},
        snapshot_id="test",
        since=None,
        until=None,
        rows=1,
        actor="ana",
    )


def artefact_path(settings: Settings, key: str) -> Path:
    """Where the registry's object store keeps the artefact ``key``."""
    return next(settings.resolved_object_store.rglob(key))


def with_model(assessor: Assessor, model) -> Assessor:
    p = assessor.parts["declaration"]
    assessor.parts["declaration"] = KindParts(p.rules, model, None)
    return assessor


@pytest.fixture
def assessor(kcs, kcs_model) -> Assessor:
    return with_model(Assessor.load(kcs, kinds=("declaration",)), kcs_model)
