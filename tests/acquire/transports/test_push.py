"""HTTP push through the real API app: POST /api/v1/ingest/{source}."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sciti.ops import QuarantineRecord, migrate, session_scope
from tests.acquire.transports.conftest import CONNECTORS
from tests.api.conftest import assert_envelope, bearer, make_client, token_factory
from tests.conftest import make_settings

NDJSON = (
    b'{"declaration_id": "P-1", "version": 1, "office": "HKG01", "amount": "12.50", "currency": "HKD"}\n'
    b'{"declaration_id": "P-2", "version": 1, "office": "HKG01", "amount": 99, "currency": "USD"}\n'
    b'{"declaration_id": "P-3", "version": 1, "office": "HKG02", "amount"\n'  # cut short: quarantined
    b"\n"
    b'{"declaration_id": "P-4", "version": 2, "office": "HKG02", "amount": 1, "currency": "EUR"}\n'
)
CSV = b"declaration_id,version,office,amount,currency\nF-1,1,HKG01,1,HKD\nF-2,x,HKG01,2,HKD\n"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def push_settings(request, tmp_path):
    home = tmp_path / "instance"
    home.mkdir()
    extra = {}
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database")
        extra = {"catalog_uri": url, "ops_db_url": url}
    s = make_settings(home, connectors_dir=CONNECTORS, max_upload_bytes=4096, **extra)
    migrate(s.resolved_ops_db_url)
    return s


@pytest.fixture
def tokens(push_settings):
    return token_factory(push_settings)


@pytest.fixture
def api(push_settings, tokens):
    with make_client(push_settings) as client:
        yield client, tokens("data_engineer")


def ndjson(token: str) -> dict[str, str]:
    return {**bearer(token), "Content-Type": "application/x-ndjson"}


def test_ndjson_body_is_one_batch_and_a_resend_is_a_duplicate(api, push_settings):
    client, token = api
    r = client.post("/api/v1/ingest/push_decl", content=NDJSON, headers=ndjson(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["received"], body["stored"], body["quarantined"]) == ("committed", 4, 3, 1)
    assert body["tables"] == {"std.declarations": 3}
    with session_scope(push_settings.resolved_ops_db_url) as s:
        [q] = s.scalars(select(QuarantineRecord).where(QuarantineRecord.batch_id == body["batch_id"])).all()
        assert q.locator.endswith(":line 3") and "JSON" in q.reason
    again = client.post("/api/v1/ingest/push_decl", content=NDJSON, headers=ndjson(token))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["stored"] == 0


@pytest.mark.parametrize("how", ["multipart", "raw"])
def test_a_file_is_read_with_the_connectors_format(api, how):
    client, token = api
    if how == "multipart":
        r = client.post(
            "/api/v1/ingest/drop_decl",
            files={"file": ("../../etc/f.csv", CSV, "text/csv")},
            headers=bearer(token),
        )
    else:
        r = client.post(
            "/api/v1/ingest/drop_decl",
            content=CSV,
            headers={**bearer(token), "Content-Type": "text/csv", "X-Filename": "f.csv"},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["received"], body["stored"], body["quarantined"]) == ("committed", 2, 1, 1)


def chunks(data: bytes, size: int = 512):
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize(
    ("path", "role", "headers", "content", "status", "code"),
    [
        ("push_decl", None, {"Content-Type": "application/x-ndjson"}, NDJSON, 401, "authentication_required"),
        ("push_decl", "viewer", {"Content-Type": "application/x-ndjson"}, NDJSON, 403, "forbidden"),
        ("nowhere", "data_engineer", {"Content-Type": "application/x-ndjson"}, NDJSON, 404, "not_found"),
        ("..", "data_engineer", {"Content-Type": "application/x-ndjson"}, NDJSON, 404, "not_found"),
        (
            "drop_decl",
            "data_engineer",
            {"Content-Type": "application/x-ndjson"},
            NDJSON,
            415,
            "unsupported_media_type",
        ),
        (
            "drop_decl",
            "data_engineer",
            {"Content-Type": "application/octet-stream"},
            CSV,
            415,
            "unsupported_media_type",
        ),
        ("push_decl", "data_engineer", {"Content-Type": "application/x-ndjson"}, b"", 422, "invalid_input"),
        (
            "push_decl",
            "data_engineer",
            {"Content-Type": "application/x-ndjson"},
            NDJSON * 20,
            413,
            "payload_too_large",
        ),
        (
            "push_decl",
            "data_engineer",
            {"Content-Type": "application/x-ndjson"},
            "chunked",
            413,
            "payload_too_large",
        ),
        (
            "drop_decl",
            "data_engineer",
            {"Content-Type": "multipart/form-data; boundary=x"},
            b"--x\r\nbroken",
            422,
            "invalid_input",
        ),
    ],
)
def test_refusals_use_the_error_envelope(api, tokens, path, role, headers, content, status, code):
    client, _ = api
    if role:
        headers = {**headers, **bearer(tokens(role))}
    if content == "chunked":  # no Content-Length: the limit is enforced while reading
        content = chunks(NDJSON * 20)
    r = client.post(f"/api/v1/ingest/{path}", content=content, headers=headers)
    assert_envelope(r, status, code)


def test_the_route_is_in_the_openapi_document(api):
    client, token = api
    doc = client.get("/api/v1/openapi.json", headers=bearer(token)).json()
    assert "post" in doc["paths"]["/api/v1/ingest/{source}"]
