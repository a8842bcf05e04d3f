"""The SQL path over HTTP as each user: masks, office rows, unmask, exports and their audit entries."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from sciti.access import create_user, issue_token, list_entries
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.settings import Settings
from tests.access.test_audit import clear_audit, temporary_pg_database
from tests.access.test_policy import build_world
from tests.api.conftest import assert_envelope, bearer, make_client
from tests.conftest import make_settings

CLEAR = ("Chen", "Tai Man", "M1234567", "1980-05-04")
PASSENGERS_SQL = "SELECT record_ref, surname, given_names, date_of_birth, document_number FROM std.passengers"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def instance(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One instance per backend for the module, with the policy test world in its lake."""
    home = tmp_path_factory.mktemp("sqlpolicy") / "instance"
    home.mkdir()
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            s = make_settings(home)
        else:
            url = stack.enter_context(temporary_pg_database())
            s = make_settings(home, catalog_uri=url, ops_db_url=url)
        migrate(s.resolved_ops_db_url)
        build_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))
        yield s


@pytest.fixture(scope="module")
def module_client(instance: Settings) -> Iterator[TestClient]:
    with make_client(instance) as c:
        yield c


@pytest.fixture
def world(instance: Settings) -> Settings:
    """The module's instance with an empty audit trail."""
    clear_audit(instance.resolved_ops_db_url)
    return instance


@pytest.fixture
def client(module_client: TestClient, world: Settings) -> TestClient:
    return module_client


_TOKENS: dict[tuple, dict[str, str]] = {}


@pytest.fixture
def user(world: Settings):
    def make(role: str, office: str | None = None) -> dict[str, str]:
        key = (world.resolved_ops_db_url, role, office)
        if key not in _TOKENS:
            with session_scope(world.resolved_ops_db_url) as s:
                name = f"{role}-{office or 'hq'}".lower()
                u, _ = create_user(s, name, [role], office_code=office, service=True)
                _TOKENS[key] = bearer(issue_token(s, u, 60).token)
        return _TOKENS[key]

    return make


def entries(settings, **kw):
    with session_scope(settings.resolved_ops_db_url) as s:
        return list_entries(s, **kw)


def test_query_is_masked_and_audited(client, world, user):
    response = client.post(
        "/api/v1/sql", headers=user("analyst"), json={"sql": PASSENGERS_SQL, "purpose": "trend"}
    )
    assert response.status_code == 200, response.text
    for clear in CLEAR:
        assert clear not in response.text
    assert response.json()["rows"][0]["date_of_birth"] in ("1980-01-01", "1991-01-01", None)
    (entry,) = entries(world, action="query")
    assert (entry.actor, entry.outcome, entry.purpose) == ("analyst-hq", "ok", "trend")
    assert entry.details["tables"] == ["std.passengers"] and entry.details["rows"] == 3
    assert entry.details["sql"] == PASSENGERS_SQL
    assert "surname" in entry.details["personal_masked"]["std.passengers"]
    assert entry.target == "table:std.passengers"


def test_unmask_in_sql_needs_permission_and_purpose(client, world, user):
    body = {"sql": PASSENGERS_SQL + " WHERE record_ref = 'R1'", "unmask": True}
    assert_envelope(client.post("/api/v1/sql", headers=user("analyst"), json=body), 403, "access_error")
    assert_envelope(
        client.post("/api/v1/sql", headers=user("data_engineer"), json={**body, "purpose": "x"}),
        403,
        "forbidden",
    )
    ok = client.post("/api/v1/sql", headers=user("analyst"), json={**body, "purpose": "case 7: identify"})
    assert ok.status_code == 200 and ok.json()["rows"][0]["surname"] == "Chen"
    unmasked = entries(world, action="unmask")
    assert [e.outcome for e in unmasked] == ["ok", "denied", "failed"]
    assert unmasked[0].purpose == "case 7: identify"
    assert unmasked[0].details["personal_unmasked"]["std.passengers"][0] == "surname"
    assert "Chen" not in repr(unmasked[0].details), "no clear personal value in the audit trail"


def test_a_failed_unmasked_query_keeps_no_value_in_the_audit(client, world, user):
    # The database's error quotes the value it could not convert: the caller may see it, the
    # audit trail (read by people without unmask, never deleted) must not keep it.
    sql = "SELECT CAST(document_number AS INT) FROM std.passengers WHERE record_ref = 'R1'"
    body = {"sql": sql, "unmask": True, "purpose": "case 7: identify"}
    failed = client.post("/api/v1/sql", headers=user("analyst"), json=body)
    assert failed.status_code == 400 and "M1234567" in failed.text, failed.text
    (entry,) = entries(world, action="unmask")
    assert entry.outcome == "failed" and "convert" in entry.details["error"]
    assert "M1234567" not in repr(entry.details) and "'…'" in entry.details["error"]


def test_an_office_sees_its_own_declarations(client, world, user):
    sql = "SELECT record_id FROM std.declarations ORDER BY 1"
    got = client.post("/api/v1/sql", headers=user("targeting_officer", "KR02"), json={"sql": sql}).json()
    assert got["rows"] == [{"record_id": "d2"}]
    everyone = client.post("/api/v1/sql", headers=user("targeting_officer"), json={"sql": sql}).json()
    assert len(everyone["rows"]) == 3


def test_denied_queries_are_audited(client, world, user):
    sql = "SELECT * FROM sec.events"
    assert_envelope(
        client.post("/api/v1/sql", headers=user("analyst"), json={"sql": sql}), 403, "table_not_readable"
    )
    sql2 = "SELECT * FROM read_csv('/etc/passwd')"
    assert_envelope(
        client.post("/api/v1/sql", headers=user("analyst"), json={"sql": sql2}), 400, "sql_refused"
    )
    denied = entries(world, action="query")
    assert [(e.outcome, e.details["sql"]) for e in denied] == [("denied", sql2), ("denied", sql)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_applies_the_policy_and_is_audited(client, world, user, fmt):
    response = client.post(
        "/api/v1/sql/export",
        headers=user("analyst"),
        json={"sql": PASSENGERS_SQL, "format": fmt, "purpose": "stats"},
    )
    assert response.status_code == 200, response.text
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(response.text)))
    else:
        rows = pq.read_table(io.BytesIO(response.content)).to_pylist()
    assert len(rows) == 3
    assert not any(clear in repr(rows) for clear in CLEAR)
    (entry,) = entries(world, action="export")
    assert entry.details["format"] == fmt and entry.details["rows"] == 3 and entry.purpose == "stats"


def test_export_needs_its_permission(client, world, user):
    body = {"sql": PASSENGERS_SQL}
    assert_envelope(
        client.post("/api/v1/sql/export", headers=user("security_officer"), json=body), 403, "forbidden"
    )


def test_unmask_one_record(client, world, user):
    body = {
        "table": "std.passengers",
        "record_id": "p1",
        "fields": ["surname", "document_number"],
        "purpose": "case 9",
    }
    got = client.post("/api/v1/unmask", headers=user("supervisor"), json=body)
    assert got.status_code == 200, got.text
    assert got.json() == {
        "table": "std.passengers",
        "record_id": "p1",
        "values": {"surname": "Chen", "document_number": "M1234567"},
    }
    (entry,) = entries(world, action="unmask")
    assert (entry.actor, entry.purpose, entry.details["record_id"]) == ("supervisor-hq", "case 9", "p1")
    assert entry.details["fields"] == ["surname", "document_number"]
    sup = user("supervisor")
    for change, status, code in [
        ({"record_id": "nope"}, 404, "not_found"),
        ({"fields": ["x'"]}, 422, "invalid_input"),
        ({"table": "raw.api_feed"}, 403, "table_not_readable"),
    ]:
        assert_envelope(client.post("/api/v1/unmask", headers=sup, json={**body, **change}), status, code)
    assert_envelope(client.post("/api/v1/unmask", headers=user("data_engineer"), json=body), 403, "forbidden")


def test_unmask_respects_office_rows(client, world, user):
    body = {"table": "std.declarations", "record_id": "d1", "fields": ["office_code"], "purpose": "check"}
    assert (
        client.post("/api/v1/unmask", headers=user("targeting_officer", "KR01"), json=body).status_code == 200
    )
    assert_envelope(client.post("/api/v1/unmask", headers=user("targeting_officer", "KR02"), json=body),
                    404, "not_found")  # fmt: skip


def test_audit_list_and_verify_over_http(client, world, user):
    client.post("/api/v1/sql", headers=user("analyst"), json={"sql": "SELECT 1 AS one"})
    officer = user("security_officer")
    page = client.get("/api/v1/audit", headers=officer, params={"actor": "analyst-hq"}).json()
    assert [e["action"] for e in page["entries"]] == ["query"]
    assert page["entries"][0]["details"]["sql"] == "SELECT 1 AS one"
    verified = client.post("/api/v1/audit/verify", headers=officer).json()
    assert verified["ok"] is True and verified["entries"] >= 1
    with session_scope(world.resolved_ops_db_url) as s:
        s.execute(text("UPDATE audit_log SET actor = 'someone' WHERE seq = 1"))
    broken = client.post("/api/v1/audit/verify", headers=officer).json()
    assert (broken["ok"], broken["first_bad_seq"]) == (False, 1) and "modified" in broken["problem"]
    assert_envelope(client.get("/api/v1/audit", headers=user("analyst")), 403, "forbidden")


def test_nothing_edits_the_audit_trail_over_http(client, world, user):
    officer = user("administrator")
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, "/api/v1/audit", headers=officer).status_code == 405
