"""/healthz says `degraded` while the risk engine has a model alert or the transports a problem.

A champion whose artefact cannot be loaded leaves the engine on rules only (or on the previous
champion): real-time answers go on, so /healthz stays 200, but it must not say `ok`. It names no
model kind, version or reason (it answers without authentication); /api/v1/risk/status does, to
report readers and to those who run the platform (the `metrics` permission).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sciti import __version__
from sciti.api.app import create_app
from sciti.risk import features
from sciti.risk.engine import Assessor, RiskService
from sciti.risk.models import promote
from sciti.settings import Settings
from tests.api.conftest import assert_envelope, bearer, make_client, token_factory
from tests.risk.engine.conftest import artefact_path, build_instance, registered, train_model


@pytest.fixture(scope="module")
def instance(tmp_path_factory, shared_data) -> Settings:
    """A KCS instance of its own: the test damages and retires a champion in its registry."""
    return build_instance(tmp_path_factory.mktemp("health") / "instance", shared_data)


def test_a_model_alert_makes_healthz_degraded_and_shows_to_operators(instance) -> None:
    entry = registered(instance, train_model(instance, features.load_reference(instance)), "declaration-h-1")
    path = artefact_path(instance, entry["artefact_key"])
    good = path.read_bytes()
    client = make_client(instance)
    tokens = token_factory(instance)
    assert client.get("/healthz").json()["checks"]["risk_models"] == "not_started"  # loads on first use

    path.write_bytes(b"damaged")
    promote(instance, entry["version"], actor="sup")
    svc = RiskService(instance, Assessor.load(instance, kinds=("declaration",), reload_seconds=0.0))
    client.app.state.risk_service = svc
    try:
        health = client.get("/healthz")
        assert health.status_code == 200  # still serving (rules only): not a reason to leave the pool
        body = health.json()
        assert body == {"status": "degraded", "version": __version__, "checks": body["checks"]}
        assert body["checks"]["risk_models"] == "degraded" and body["checks"]["ops_db"] == "ok"
        for secret in ("declaration", "h-1", "damaged", str(instance.home)):
            assert secret not in health.text  # which model and why: for authenticated operators only

        # The administrator and the metrics scraper run the platform: they see why.
        for role in ("administrator", "monitoring", "viewer"):
            status = client.get("/api/v1/risk/status", headers=bearer(tokens(role)))
            assert status.status_code == 200, (role, status.text)
            assert status.json()["kinds"]["declaration"]["model_alert"]  # the loader's reason
        for role in ("clearance_system", "partner"):
            assert_envelope(client.get("/api/v1/risk/status", headers=bearer(tokens(role))), 403, "forbidden")

        path.write_bytes(good)  # repaired: loaded at the next check, and healthz is ok again
        svc.assessor.refresh_rules(force=True)
        health = client.get("/healthz").json()
        assert (health["status"], health["checks"]["risk_models"]) == ("ok", "ok")
    finally:
        svc.stop()
        path.write_bytes(good)
        promote(instance, entry["version"], "retired", actor="sup")


def test_a_transport_problem_makes_healthz_degraded_not_unavailable(instance) -> None:
    from sciti.background import BackgroundJobs

    background = BackgroundJobs(instance)  # not started: its state is what the child reported
    with TestClient(create_app(instance, background=background)) as c:
        background.transports_status = "running"
        assert c.get("/healthz").json()["status"] == "ok"
        for state in ("degraded", "failed"):
            background.transports_status = state
            health = c.get("/healthz")
            assert health.status_code == 200
            assert (health.json()["status"], health.json()["checks"]["transports"]) == ("degraded", state)
