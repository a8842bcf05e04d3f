"""The security review's SQL over HTTP (POST /api/v1/sql, as ``sciti sql`` and the web SQL page run
it): risk results by office, watch lists and intelligence with ``intel.read`` only and masked, security
logs for the security officer only — each refusal answered and audited like a missing table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sciti.access import DataPolicy, create_user, issue_token, list_entries
from sciti.lake import open_lake
from sciti.ops import migrate, session_scope
from sciti.settings import Settings
from tests.access.test_policy import principal
from tests.access.test_policy_derived import REPORT_TEXT, WATCHED_DOCUMENT, WATCHED_NAME, build_derived_world
from tests.api.conftest import assert_envelope, bearer, make_client
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("needtoknow") / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    build_derived_world(open_lake(s.resolved_catalog_uri, s.resolved_warehouse))
    return s


@pytest.fixture(scope="module")
def client(instance: Settings) -> Iterator[TestClient]:
    with make_client(instance) as c:
        yield c


@pytest.fixture(scope="module")
def user(instance: Settings):
    made: dict[tuple[str, str | None], dict[str, str]] = {}

    def make(role: str, office: str | None = None) -> dict[str, str]:
        if (role, office) not in made:
            with session_scope(instance.resolved_ops_db_url) as s:
                u, _ = create_user(
                    s, f"{role}-{office or 'hq'}".lower(), [role], office_code=office, service=True
                )
                made[(role, office)] = bearer(issue_token(s, u, 60).token)
        return made[(role, office)]

    return make


def sql(client: TestClient, headers: dict[str, str], statement: str, **extra):
    return client.post("/api/v1/sql", headers=headers, json={"sql": statement, **extra})


def last_entry(settings: Settings, actor: str):
    with session_scope(settings.resolved_ops_db_url) as s:
        return list_entries(s, actor=actor, limit=1)[0]


def test_finding_1_risk_assessments_follow_the_office(client, user) -> None:
    statement = "SELECT office_code, count(*) AS n FROM risk.assessments GROUP BY 1 ORDER BY 1"
    offhk = sql(client, user("targeting_officer", "HKIA"), statement)
    assert offhk.status_code == 200, offhk.text
    assert offhk.json()["rows"] == [{"office_code": "HKIA", "n": 2}]
    everyone = sql(client, user("targeting_officer"), statement).json()["rows"]
    assert {r["office_code"] for r in everyone} == {"HKIA", "KTCT", "40", None}


@pytest.mark.parametrize(
    "table", ["risk.reference_watchlist", "std.watchlist_entries", "std.intelligence_reports"]
)
def test_finding_2_watch_lists_and_reports_are_refused_without_intel_read(client, user, instance, table):
    refused = sql(client, user("targeting_officer"), f"SELECT * FROM {table}")
    err = assert_envelope(refused, 403, "table_not_readable")
    assert "does not exist or your roles" in err["message"]
    assert WATCHED_DOCUMENT not in refused.text and REPORT_TEXT not in refused.text
    entry = last_entry(instance, "targeting_officer-hq")
    assert (entry.action, entry.outcome) == ("query", "denied")


def test_finding_2_the_watch_list_is_masked_and_its_masks_audited(client, user, instance) -> None:
    shown = sql(client, user("analyst"), "SELECT value FROM risk.reference_watchlist")
    assert shown.status_code == 200, shown.text
    assert WATCHED_DOCUMENT not in shown.text and WATCHED_NAME not in shown.text
    assert all(r["value"].startswith("pn:") for r in shown.json()["rows"])
    entry = last_entry(instance, "analyst-hq")
    assert entry.details["personal_masked"] == {"risk.reference_watchlist": ["value"]}
    clear = sql(client, user("analyst"), "SELECT value FROM risk.reference_watchlist",
                unmask=True, purpose="case 2026-9: confirm the listing")  # fmt: skip
    assert WATCHED_DOCUMENT in clear.text
    entry = last_entry(instance, "analyst-hq")
    assert entry.action == "unmask" and entry.details["personal_unmasked"] == {
        "risk.reference_watchlist": ["value"]
    }
    assert WATCHED_DOCUMENT not in repr(entry.details)


@pytest.mark.parametrize(
    "role", ["analyst", "targeting_officer", "supervisor", "data_engineer", "administrator"]
)
def test_finding_3_security_events_are_for_the_security_officer(client, user, role) -> None:
    statement = "SELECT log, count(*) AS n FROM std.security_events GROUP BY 1 ORDER BY 1"
    assert_envelope(sql(client, user(role), statement), 403, "table_not_readable")
    ok = sql(client, user("security_officer"), statement)
    assert ok.status_code == 200 and ok.json()["rows"] == [
        {"log": "auth", "n": 1},
        {"log": "firewall", "n": 1},
    ]


def test_the_tables_list_shows_each_role_its_own() -> None:
    """``sciti tables`` and the web SQL page list what the policy lets a person read."""

    def readable(role: str, office: str | None = None) -> set[str]:
        who = principal(role, office=office)
        idents = ("risk.assessments", "risk.reference_history", "risk.reference_watchlist",
                  "std.watchlist_entries", "std.intelligence_reports", "std.security_events")  # fmt: skip
        return {t for t in idents if DataPolicy(who).can_read(t)}

    assert readable("targeting_officer", "HKIA") == {"risk.assessments"}
    assert readable("targeting_officer") == {"risk.assessments", "risk.reference_history"}
    assert readable("analyst") == {
        "risk.assessments", "risk.reference_history", "risk.reference_watchlist",
        "std.watchlist_entries", "std.intelligence_reports",
    }  # fmt: skip
    assert readable("security_officer") == {"std.security_events"}
