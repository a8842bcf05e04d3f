"""Security headers of every answer (decision 0101): nothing with personal data or a session's view
is kept by a browser or proxy (``Cache-Control: no-store``), no page may be framed, content types
are not guessed, and no address leaks to another site. The web application's static assets keep
their caching. One ASGI middleware (sciti.api.middleware) sets them for the API and the pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sciti.access import create_user, issue_token
from sciti.api.middleware import is_static, security_headers
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.settings import Settings
from tests.access.test_policy import build_world
from tests.api.conftest import bearer, make_client
from tests.conftest import make_settings

PASSWORD = "Lantern-Orbit-Quarry-42"
PASSENGERS_SQL = "SELECT record_ref, surname, document_number FROM std.passengers"
FRAMING = {
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("headers") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    build_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))
    with session_scope(s.resolved_ops_db_url) as session:
        create_user(session, "tom", ["targeting_officer"], password=PASSWORD)
    return s


@pytest.fixture(scope="module")
def client(instance: Settings) -> Iterator[TestClient]:
    with make_client(instance) as c:
        yield c


@pytest.fixture(scope="module")
def token(instance: Settings) -> dict[str, str]:
    with session_scope(instance.resolved_ops_db_url) as s:
        user, _ = create_user(s, "svc-officer", ["targeting_officer"], service=True)
        return bearer(issue_token(s, user, 60).token)


@pytest.fixture(scope="module")
def web(instance: Settings) -> Iterator[TestClient]:
    """A browser logged in to the pages as a targeting officer."""
    with make_client(instance) as c:
        page = c.get("/ui/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        form = {"username": "tom", "password": PASSWORD, "totp": "", "csrf_token": csrf}
        assert c.post("/ui/login", data=form, follow_redirects=False).status_code == 303
        yield c


def _protected(response, *, cache: str | None = "no-store") -> None:
    for name, value in FRAMING.items():
        assert response.headers.get(name) == value, (name, response.headers)
        assert len(response.headers.get_list(name)) == 1, name
    assert response.headers.get("cache-control") == cache


def test_api_answers(client, token):
    me = client.get("/api/v1/me", headers=token)
    assert me.status_code == 200
    _protected(me)
    _protected(client.get("/healthz"))
    refused = client.get("/api/v1/me")  # an error envelope too
    assert refused.status_code == 401
    _protected(refused)


def test_sql_results_and_exports(client, token):
    result = client.post("/api/v1/sql", headers=token, json={"sql": PASSENGERS_SQL})
    assert result.status_code == 200, result.text
    _protected(result)
    export = client.post("/api/v1/sql/export", headers=token, json={"sql": PASSENGERS_SQL, "format": "csv"})
    assert export.status_code == 200, export.text
    _protected(export)


def test_web_pages_and_exports(web):
    home = web.get("/ui/")
    assert home.status_code == 200
    _protected(home)
    _protected(web.get("/ui/login"))
    csrf = re.search(r'data-csrf="([^"]+)"', home.text).group(1)
    run = web.post("/ui/sql/run", data={"sql": PASSENGERS_SQL, "csrf_token": csrf})
    assert run.status_code == 200, run.text[:300]
    _protected(run)
    export = web.post("/ui/sql/export", data={"sql": PASSENGERS_SQL, "format": "csv", "csrf_token": csrf})
    assert export.status_code == 200, export.text[:300]
    _protected(export)


def test_static_assets_keep_their_caching(web, client):
    for c in (web, client):  # with or without a session
        css = c.get("/ui/static/app.css")
        assert css.status_code == 200 and "etag" in css.headers
        _protected(css, cache=None)
        again = c.get("/ui/static/app.css", headers={"If-None-Match": css.headers["etag"]})
        assert again.status_code == 304


def test_an_answers_own_headers_win():
    own = [(b"cache-control", b"private, max-age=60"), (b"content-security-policy", b"default-src 'self';")]
    headers = dict(security_headers(own, static=False))
    assert headers[b"cache-control"] == b"private, max-age=60"
    assert headers[b"content-security-policy"] == b"default-src 'self'; frame-ancestors 'none'"
    framed = [(b"content-security-policy", b"frame-ancestors 'self'")]
    assert (
        dict(security_headers(framed, static=False))[b"content-security-policy"] == b"frame-ancestors 'self'"
    )
    assert is_static({"type": "http", "path": "/sciti/ui/static/app.css", "root_path": "/sciti"})
    assert not is_static({"type": "http", "path": "/ui/sql/export", "root_path": ""})
