"""The risk pages for an account bound to an office (decision 0081): its office's queue only, another
office's record page is "not found" (as in the API), and the page offers actions only on an item
the person may work."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sciti.access import create_user
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskQueueItem
from tests.web.conftest import PASSWORD, login

RECORD_LINK = re.compile(r'/ui/risk/records/([\w-]+)"')


@pytest.fixture(scope="module")
def offices(web_settings) -> tuple[str, str]:
    """The two offices with the most open items in the web instance's queue."""
    with session_scope(web_settings.resolved_ops_db_url) as s:
        rows = s.execute(
            select(RiskQueueItem.office_code, func.count())
            .where(RiskQueueItem.status == "open", RiskQueueItem.office_code.is_not(None))
            .group_by(RiskQueueItem.office_code)
            .order_by(func.count().desc())
        ).all()
    assert len(rows) >= 2, "the web instance queues records of several offices"
    return rows[0][0], rows[1][0]


def _items(web_settings, office: str) -> list[str]:
    with session_scope(web_settings.resolved_ops_db_url) as s:
        return list(
            s.scalars(
                select(RiskQueueItem.assessment_id)
                .where(RiskQueueItem.office_code == office, RiskQueueItem.status == "open")
                .order_by(RiskQueueItem.score.desc())
            )
        )


@pytest.fixture(scope="module")
def bound(web_app, web_settings, offices):
    """A targeting officer bound to the first office, logged in."""
    with session_scope(web_settings.resolved_ops_db_url) as s:
        create_user(s, "tom-office", ["targeting_officer"], office_code=offices[0], password=PASSWORD)
    with TestClient(web_app, raise_server_exceptions=False) as c:
        yield login(c, "tom-office")


def test_the_queue_page_lists_the_officers_office_only(bound, web_settings, offices) -> None:
    mine, other = offices
    shown = RECORD_LINK.findall(bound.get("/ui/risk/queue").text)
    assert shown and set(shown) <= set(_items(web_settings, mine))
    asked = bound.get("/ui/risk/queue", params={"office": other}).text
    assert not RECORD_LINK.findall(asked)


def test_another_offices_record_is_not_found(bound, web_settings, offices) -> None:
    mine, other = offices
    theirs = _items(web_settings, other)[0]
    page = bound.get(f"/ui/risk/records/{theirs}")
    assert page.status_code == 404
    assert page.status_code == bound.get("/ui/risk/records/no-such-id").status_code
    assert 'id="inspection-form"' not in page.text and 'id="reasons"' not in page.text
    csrf = re.search(r'data-csrf="([^"]+)"', bound.get("/ui/").text).group(1)
    unmask = bound.post(f"/ui/risk/records/{theirs}/unmask", data={"purpose": "case 1", "csrf_token": csrf})
    assert unmask.status_code == 404
    own = bound.get(f"/ui/risk/records/{_items(web_settings, mine)[0]}")
    assert own.status_code == 200 and 'id="inspection-form"' in own.text


def test_actions_are_offered_only_on_an_item_to_work(as_user, web_settings, offices) -> None:
    """A record whose item is closed (or that was never queued) shows its explanation, no form."""
    tom = as_user("tom")
    open_one, closed_one = _items(web_settings, offices[1])[-2:]
    with session_scope(web_settings.resolved_ops_db_url) as s:
        s.get(RiskQueueItem, closed_one).status = "done"
    try:
        assert 'id="inspection-form"' in tom.get(f"/ui/risk/records/{open_one}").text
        closed = tom.get(f"/ui/risk/records/{closed_one}")
        assert closed.status_code == 200 and 'id="reasons"' in closed.text
        assert 'id="inspection-form"' not in closed.text
    finally:
        with session_scope(web_settings.resolved_ops_db_url) as s:
            s.get(RiskQueueItem, closed_one).status = "open"


def test_the_dashboard_counts_the_officers_office_only(bound, as_user) -> None:
    """The lanes panel reads risk.assessments through the office rule, as the declarations do."""

    def lanes(client) -> int:
        panel = client.get("/ui/home/panels").text
        section = panel.split('id="h-lanes"', 1)[1].split("</section>", 1)[0]
        return sum(int(n) for n in re.findall(r'<td class="num">(\d+)</td>', section))

    assert 0 < lanes(bound) < lanes(as_user("sue"))
