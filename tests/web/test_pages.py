"""Every page x every role through real HTTP handling: the same permissions as the API, login
redirects, CSRF on every change, languages, the dashboard's figures and the workbench's audit."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from sciti.access import list_entries
from sciti.api.routes import served_routes
from sciti.lake import open_lake, query
from sciti.ops import session_scope
from sciti.web import create_web_app
from sciti.web.i18n import catalogue
from tests.web.conftest import PEOPLE, login, login_csrf

ANY = frozenset(PEOPLE)
# GET page -> people allowed (the others get 403; nobody logged in gets the login page).
PAGES = {
    "/": ANY,
    "/home/panels": ANY,
    "/sources": ANY,  # batches.read: every staff role
    "/quarantine": {"dee", "adam"},
    "/quarantine/{record_id}": {"dee", "adam"},
    "/sql": {"ana", "tom", "sue", "dee", "adam", "sec"},
    "/risk/queue": {"ana", "tom", "sue"},
    "/risk/records/{assessment_id}": {"ana", "tom", "sue"},
    "/rules": {"ana", "tom", "sue"},
    "/rules/{rule_id}": {"ana", "tom", "sue"},
    "/rules-new": {"ana", "tom"},
    "/models": {"ana", "tom", "sue", "dee"},
    "/admin": {"adam", "sec", "dee"},
    "/admin/users": {"adam"},
    "/admin/audit": {"adam", "sec"},
    "/admin/secrets": {"adam", "sec", "dee"},
}
PUBLIC = {"/login"}
# Placeholders that name something that exists, so an allowed person gets a real page.
EXAMPLE = {"{rule_id}": "T-CN-DUTY"}


def test_every_page_has_a_row(web_settings):
    web = create_web_app(web_settings)
    pages = {r.path for r in served_routes(web) if "GET" in r.methods}
    assert pages - PUBLIC == set(PAGES), "add the page to PAGES with the people allowed"


def _queue_item(web_settings) -> str:
    from sciti.ops.risk_tables import RiskQueueItem

    with session_scope(web_settings.resolved_ops_db_url) as s:
        return s.query(RiskQueueItem.assessment_id).order_by(RiskQueueItem.score.desc()).first()[0]


@pytest.mark.parametrize("person", sorted(set(PEOPLE) - {"ana"}))
def test_page_access_follows_the_roles(as_user, web_settings, person):
    client = as_user(person)
    examples = {**EXAMPLE, "{assessment_id}": _queue_item(web_settings)}
    for path, allowed in PAGES.items():
        if "{record_id}" in path:
            continue  # no quarantined record in this instance: checked in the quarantine test
        url = "/ui" + re.sub(r"\{[^}]+\}", lambda m: examples[m.group(0)], path)
        response = client.get(url, follow_redirects=False)
        if person in allowed:
            assert response.status_code in (200, 303), (person, url, response.text[:300])
        else:
            assert response.status_code == 403, (person, url, response.status_code)
            assert "Not allowed" in response.text


def test_nobody_logged_in_goes_to_the_login_page(web_app):
    with TestClient(web_app) as anon:
        for path in PAGES:
            url = "/ui" + re.sub(r"\{[^}]+\}", "1", path)
            response = anon.get(url, follow_redirects=False)
            assert response.status_code == 303, url
            assert response.headers["location"].startswith("/ui/login?next=")
        assert anon.get("/ui/login").status_code == 200
        hx = anon.get("/ui/home/panels", headers={"HX-Request": "true"}, follow_redirects=False)
        assert hx.headers["HX-Redirect"].startswith("/ui/login")


def test_changes_need_the_csrf_token(as_user):
    client = as_user("tom")
    refused = client.post("/ui/sql/run", data={"sql": "SELECT 1"})
    assert refused.status_code == 403
    token = re.search(r'data-csrf="([^"]+)"', client.get("/ui/").text).group(1)
    ok = client.post("/ui/sql/run", data={"sql": "SELECT 1 AS one", "csrf_token": token})
    assert ok.status_code == 200 and 'id="sql-count"' in ok.text
    assert client.post("/ui/logout", data={"csrf_token": "forged"}).status_code == 403


@pytest.mark.parametrize(
    ("form", "status", "text"),
    [
        ({"username": "tom", "password": "wrong-password-123"}, 401, "Wrong username or password"),
        ({"username": "nobody", "password": "wrong-password-123"}, 401, "Wrong username or password"),
        ({"username": "ana", "password": "Lantern-Orbit-Quarry-42"}, 401, "Enter your one-time code"),
        ({"username": "ana", "password": "Lantern-Orbit-Quarry-42", "totp": "000000"}, 401, "not valid"),
    ],
)
def test_login_refusals_say_what_to_do(web_app, form, status, text):
    with TestClient(web_app) as c:
        response = c.post("/ui/login", data={**form, "csrf_token": login_csrf(c)}, follow_redirects=False)
        assert response.status_code == status
        assert text in response.text
        assert "sciti_session" not in response.cookies


def test_static_files_are_served_by_sciti(web_app):
    with TestClient(web_app) as c:
        page = c.get("/ui/login").text
        scripts = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
        assert {s.rsplit("/", 1)[-1] for s in scripts} == {
            "app.css",
            "htmx.min.js",
            "echarts.min.js",
            "app.js",
        }
        for src in scripts:
            assert src.startswith("/ui/static/"), src  # never a CDN
            assert c.get(src).status_code == 200


def test_language_is_remembered_for_the_person(web_app):
    with TestClient(web_app) as first:
        login(first, "sue")
        token = re.search(r'data-csrf="([^"]+)"', first.get("/ui/").text).group(1)
        page = first.post("/ui/language", data={"lang": "zh-Hant", "back": "/ui/rules", "csrf_token": token})
        assert "風險規則" in page.text and 'lang="zh-Hant"' in page.text
    with TestClient(web_app) as other_browser:  # no cookie yet: English until sue logs in
        assert "Log in to SCITI" in other_browser.get("/ui/login").text
        login(other_browser, "sue")
        assert "首頁" in other_browser.get("/ui/").text
        token = re.search(r'data-csrf="([^"]+)"', other_browser.get("/ui/").text).group(1)
        other_browser.post("/ui/language", data={"lang": "en", "csrf_token": token})
        assert ">Home<" in other_browser.get("/ui/").text


def test_catalogues_cover_every_message_the_templates_use():
    en, zh = catalogue("en"), catalogue("zh-Hant")
    assert en.keys() == zh.keys()
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "src" / "sciti" / "web" / "templates"
    used = set()
    for f in folder.glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_]+\.[a-z_.]+)'\s*[,)]", f.read_text(encoding="utf-8")))
    assert used - en.keys() == set()


def test_dashboard_figures_come_from_the_lake(as_user, web_settings):
    from sciti.web.views.home import figures

    vic = as_user("vic")
    page = vic.get("/ui/home/panels")
    assert page.status_code == 200 and "data-chart" in page.text
    lake = open_lake(web_settings.resolved_catalog_uri, web_settings.resolved_warehouse)
    from sciti.access import Principal

    principal = Principal(1, "vic", "", ("viewer",), None, frozenset({"risk.report", "batches.read"}))
    data = figures(web_settings, principal)
    (expected,) = query(
        lake,
        "SELECT count(*) AS n FROM std.declarations WHERE acceptance_date > "
        "(SELECT max(acceptance_date) FROM std.declarations) - INTERVAL 30 DAY",
    ).to_pylist()
    assert data["declarations"]["total"] == expected["n"] > 0
    (assessed,) = query(lake, "SELECT count(*) AS n FROM risk.assessments").to_pylist()
    assert sum(r["n"] for r in data["lanes"]) == assessed["n"]
    assert data["seizures"] is None  # KCS has no seizures: the panel shows its empty state
    assert data["ingestion"]["quarantine_open"] >= 0


def test_sql_export_is_audited_and_complete(as_user, web_settings):
    client = as_user("tom")
    token = re.search(r'data-csrf="([^"]+)"', client.get("/ui/sql").text).group(1)
    sql = "SELECT office_code, count(*) AS n FROM std.declarations GROUP BY 1 ORDER BY 1"
    response = client.post(
        "/ui/sql/export", data={"sql": sql, "format": "csv", "purpose": "weekly report", "csrf_token": token}
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    lake = open_lake(web_settings.resolved_catalog_uri, web_settings.resolved_warehouse)
    assert len(rows) == query(lake, sql).num_rows > 0
    with session_scope(web_settings.resolved_ops_db_url) as s:
        (entry,) = list_entries(s, actor="tom", action="export", limit=1)
    assert entry.purpose == "weekly report" and entry.details["rows"] == len(rows)
    assert entry.details["format"] == "csv"


def test_a_viewer_cannot_export_and_a_refused_query_is_shown(as_user):
    vic, dee = as_user("vic"), as_user("dee")
    token = re.search(r'data-csrf="([^"]+)"', vic.get("/ui/").text).group(1)
    assert vic.post("/ui/sql/export", data={"sql": "SELECT 1", "csrf_token": token}).status_code == 403
    token = re.search(r'data-csrf="([^"]+)"', dee.get("/ui/").text).group(1)
    shown = dee.post("/ui/sql/run", data={"sql": "SELECT * FROM risk.assessments", "csrf_token": token})
    assert 'id="sql-error"' in shown.text and "does not exist or your roles" in shown.text


def test_risk_queue_pages_by_keyset(as_user):
    client = as_user("sue")
    first = client.get("/ui/risk/queue")
    cursor = re.search(r'id="next-page" href="[^"]*cursor=([^"&]+)"', first.text)
    assert cursor, "the instance has more than one page of flagged records"
    ids = lambda html: re.findall(r'/ui/risk/records/([\w-]+)"', html)  # noqa: E731
    second = client.get(f"/ui/risk/queue?cursor={cursor.group(1)}")
    assert ids(first.text) and ids(second.text) and not set(ids(first.text)) & set(ids(second.text))


def test_record_shows_reasons_and_provenance(as_user, web_settings):
    client = as_user("tom")
    page = client.get(f"/ui/risk/records/{_queue_item(web_settings)}")
    assert page.status_code == 200
    assert 'id="reasons"' in page.text and 'id="provenance"' in page.text
    assert re.search(r"valid\.csv:\d+|line", page.text), "the locator points back at the source line"
    assert client.get("/ui/risk/records/no-such-id").status_code == 404


def test_an_empty_instance_shows_empty_states(settings):
    from sciti.access import create_user
    from sciti.api.app import create_app
    from sciti.ops import migrate

    migrate(settings.resolved_ops_db_url)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "first", ["viewer", "analyst"], password="Lantern-Orbit-Quarry-42")
    with TestClient(create_app(settings)) as c:
        login(c, "first")
        panels = c.get("/ui/home/panels").text
        assert "No declarations have been ingested yet." in panels
        assert "No risk assessments yet." in panels and "No seizures recorded yet." in panels
        for page in ("/ui/sources", "/ui/risk/queue", "/ui/rules", "/ui/models"):
            assert c.get(page).status_code == 200, page


def test_a_form_or_address_the_page_cannot_take_gets_an_html_page(web_app, as_user):
    """Wrong types and NUL characters: a 422 page naming the fields, never echoing what was typed,
    and nothing behind the page runs (no login attempt is made or counted)."""
    secret = "Lantern-\x00-Orbit-secret"
    with TestClient(web_app) as c:
        form = {"username": "tom", "password": secret, "csrf_token": login_csrf(c)}
        page = c.post("/ui/login", data=form, follow_redirects=False)
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
        assert "Some fields are not valid" in page.text and "not valid: password" in page.text
        assert "Lantern-" not in page.text and "\x00" not in page.text
        assert "sciti_session" not in page.cookies
        login(c, "tom")  # the refused form counted as no failed login
    sec = as_user("sec")
    page = sec.get("/ui/admin/audit", params={"offset": "several"})
    assert page.status_code == 422
    message = page.text.split('class="state error"', 1)[1].split("</section>", 1)[0]
    assert "not valid: offset" in message and "several" not in message
    assert "<nav" in page.text  # the site's own page, not the framework's JSON
    fragment = sec.get("/ui/admin/audit", params={"actor": "a\x00b"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 422 and fragment.text.startswith('<div class="notice error"')
    assert "not valid: who" in fragment.text  # the actor field, by its label
