"""/healthz (public, nothing sensitive), /metrics (Prometheus, needs `metrics`), and the lifespan."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sciti import __version__
from sciti.api.app import create_app
from tests.api.conftest import assert_envelope, bearer


def test_healthz_is_public_and_minimal(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body == {"status": "ok", "version": __version__, "checks": body["checks"]}
    assert body["checks"]["ops_db"] == "ok"
    assert "sqlite" not in response.text and "postgres" not in response.text  # no locations or URLs


def _requests_total(text: str, route: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "sciti_http_requests":
            return sum(
                s.value
                for s in family.samples
                if s.name.endswith("_total") and s.labels["route"] == route and s.labels["status"] == status
            )
    return 0.0


def test_metrics_count_requests_by_route_template(client, token_for):
    scraper = bearer(token_for("monitoring"))
    before = _requests_total(
        client.get("/metrics", headers=scraper).text, "/api/v1/batches/{batch_id}", "404"
    )
    viewer = bearer(token_for("viewer"))
    for name in ("a", "b", "c"):
        client.get(f"/api/v1/batches/{name}", headers=viewer)
    response = client.get("/metrics", headers=scraper)
    assert response.headers["content-type"].startswith("text/plain")
    after = _requests_total(response.text, "/api/v1/batches/{batch_id}", "404")
    assert after - before == 3  # one label set for all ids: bounded cardinality
    assert "sciti_http_request_duration_seconds_bucket" in response.text
    assert_envelope(client.get("/metrics", headers=viewer), 403, "forbidden")


def test_healthz_reports_the_transports_of_the_background_process(api_settings):
    """The transports run in the server's background jobs process (tests/test_background.py);
    without one, /healthz says they were not started."""
    from fastapi.testclient import TestClient

    from sciti.background import BackgroundJobs

    with TestClient(create_app(api_settings)) as c:
        assert c.get("/healthz").json()["checks"]["transports"] == "not_started"
    background = BackgroundJobs(api_settings)  # not started: as the server sees it before the child reports
    with TestClient(create_app(api_settings, background=background)) as c:
        assert c.get("/healthz").json()["checks"]["transports"] == "starting"
        background.transports_status = "running"
        assert c.get("/healthz").json()["checks"]["transports"] == "running"
