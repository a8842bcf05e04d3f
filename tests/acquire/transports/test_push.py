"""HTTP push through the real API app: POST /api/v1/ingest/{source}."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from sciti.ops import QuarantineRecord, migrate, session_scope
from tests.acquire.transports.conftest import CONNECTORS
from tests.api.conftest import assert_envelope, bearer, make_client, token_factory
from tests.conftest import make_settings

push_module = importlib.import_module("sciti.acquire.transports.push")  # the package exports push()

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
    # The same records in other bytes: a batch of its own, whose rows are already stored (0105).
    resent = client.post(
        "/api/v1/ingest/push_decl", content=NDJSON.replace(b"\n\n", b"\n"), headers=ndjson(token)
    )
    counts = [resent.json()[k] for k in ("status", "received", "stored", "quarantined", "already_stored")]
    assert counts == ["committed", 4, 0, 1, 3], resent.text


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


@pytest.fixture
def shipped(tmp_path, shared_data):
    """An instance with the connectors shipped in connectors/ (names with `-` among them)."""
    home = tmp_path / "shipped"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    return s


@pytest.mark.parametrize("name", ["wco-dec", "edifact-cuscar", "demo-passengers", "demo-elock", "kcs"])
def test_every_shipped_connector_can_be_pushed_to_by_name(shipped, name):
    assert push_module.find_connector(shipped, name).name == name


def test_a_wco_declaration_pushed_to_wco_dec_is_stored(shipped, shared_data):
    sample = shared_data / "wco" / "samples" / "TT_IM001b__TT_IM001b.xml"
    with make_client(shipped) as client:
        token = token_factory(shipped)("data_engineer")
        r = client.post(
            "/api/v1/ingest/wco-dec",
            files={"file": (sample.name, sample.read_bytes())},
            headers=bearer(token),
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["connector"], body["status"], body["received"]) == ("wco-dec", "committed", 1)
    assert body["received"] == body["stored"] + body["quarantined"]


class _Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 11, 24, 8, 17, 25, tzinfo=UTC)


class _Units:
    """Stands in for the runner: keeps the unit each push became."""

    def __init__(self) -> None:
        self.units: list[str] = []

    def ingest_bytes(self, connector, data, unit, transport):
        self.units.append(unit)


@pytest.mark.parametrize(
    ("content_type", "filename", "name"),
    [("application/x-ndjson", None, "body.ndjson"), ("text/csv", "day1.csv", "day1.csv")],
)
def test_two_pushes_in_the_same_instant_are_two_units(monkeypatch, content_type, filename, name):
    monkeypatch.setattr(push_module, "datetime", _Frozen)
    connector = type("C", (), {"name": "c", "format": "jsonl"})()
    runner = _Units()
    for body in (b'{"a": 1}\n', b'{"a": 2}\n'):
        push_module.push(runner, connector, body, content_type=content_type, filename=filename)
    first, second = runner.units
    assert first != second
    for unit in runner.units:
        assert unit.startswith("http:push-20261124T081725.000000Z-") and unit.endswith("/" + name)


def test_the_quarantine_locator_names_the_push(api, push_settings):
    client, token = api
    # Two bodies, each with its bad line 3, of other records (a record already stored would be
    # quarantined as such: decision 0100).
    bodies = [NDJSON, NDJSON.replace(b'"P-', b'"Q-')]
    ids = [client.post("/api/v1/ingest/push_decl", content=b, headers=ndjson(token)).json() for b in bodies]
    with session_scope(push_settings.resolved_ops_db_url) as s:
        locators = [q.locator for q in s.scalars(select(QuarantineRecord).order_by(QuarantineRecord.id))]
    assert len(set(locators)) == 2 and [i["status"] for i in ids] == ["committed", "committed"]
    assert all(loc.startswith("http:push-") and loc.endswith("/body.ndjson:line 3") for loc in locators)
