"""The queue and record pages for the review's findings (decision 0091): red first on the queue,
the rule that set a lane named, "any" status meaning any, a taken record's forms offered only to
its taker or a supervisor, the recorded result shown, and a real-time assessment's record page
open before the lake flusher has written it."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, select

from sciti.access import create_user
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskOutbox, RiskQueueItem
from sciti.risk.engine import Assessor
from sciti.risk.engine.store import write
from tests.risk.engine.test_store import heavy_cheap
from tests.web.conftest import PASSWORD, login

RECORD_LINK = re.compile(r'/ui/risk/records/([\w-]+)"')
WATCHLIST = "Passenger on the watch list (rule PAX-WATCHLIST-01 v1, lane red)"
FORMS = ("inspection-form", "override-form", "release-form", "reassign-form", "take-form")


def office() -> str:
    return f"W{uuid.uuid4().hex[:8].upper()}"  # an office of one test: its queue is that test's


def row(office_code: str, lane: str, score: float, status: str = "open", **more) -> dict:
    return {
        "assessment_id": uuid.uuid4().hex, "kind": "passenger", "record_id": uuid.uuid4().hex,
        "subject_ref": f"P-{lane}-{score}", "office_code": office_code, "score": score, "lane": lane,
        "assigned_lane": lane, "sampled": False, "reasons": [], "rule_ids": [], "model_version": None,
        "assessed_at": datetime.now(UTC), "status": status, **more,
    }  # fmt: skip


class Queued:
    """Items this test puts on the web instance's queue (and in its outbox): taken off again
    afterwards, so the other web tests see the queue they expect."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.ids: list[str] = []

    def put(self, rows: list[dict]) -> list[str]:
        with session_scope(self.settings.resolved_ops_db_url) as s:
            s.execute(insert(RiskQueueItem), rows)
        self.ids += [r["assessment_id"] for r in rows]
        return [r["assessment_id"] for r in rows]

    def clear(self) -> None:
        with session_scope(self.settings.resolved_ops_db_url) as s:
            s.execute(delete(RiskQueueItem).where(RiskQueueItem.assessment_id.in_(self.ids)))
            s.execute(delete(RiskOutbox).where(RiskOutbox.assessment_id.in_(self.ids)))


@pytest.fixture
def queued(web_settings) -> Iterator[Queued]:
    mine = Queued(web_settings)
    yield mine
    mine.clear()


def forms(page: str) -> set[str]:
    return {f for f in FORMS if f'id="{f}"' in page}


# --- the queue -------------------------------------------------------------------------------------


def test_the_queue_lists_red_first_and_names_the_rule_that_set_the_lane(as_user, queued) -> None:
    mine = office()
    blue, yellow, watched = queued.put(
        [row(mine, "blue", 72.5), row(mine, "yellow", 64.0),
         row(mine, "red", 0.0, reasons=[WATCHLIST], rule_ids=["PAX-WATCHLIST-01"])]
    )  # fmt: skip
    page = as_user("sue").get("/ui/risk/queue", params={"office": mine}).text
    assert RECORD_LINK.findall(page) == [watched, yellow, blue]
    red_row = page.split(watched, 1)[0].rsplit("<tr>", 1)[1]
    assert "by rule PAX-WATCHLIST-01" in red_row  # not a bare 0.000 as if it were the risk


def test_status_any_lists_closed_items_too(as_user, queued) -> None:
    mine = office()
    to_do, closed = queued.put([row(mine, "red", 90.0), row(mine, "yellow", 80.0, status="done")])
    client = as_user("sue")
    default = client.get("/ui/risk/queue", params={"office": mine}).text
    assert RECORD_LINK.findall(default) == [to_do]
    every = client.get("/ui/risk/queue", params={"office": mine, "status": "any"}).text
    assert RECORD_LINK.findall(every) == [to_do, closed]
    # The default choice says what it lists; "any" is its own choice and is kept selected.
    assert re.search(r'<option value=""[^>]*>open or taken</option>', default)
    assert '<option value="any" selected>any</option>' in every


# --- a record someone has taken ---------------------------------------------------------------------


def open_declaration(web_settings) -> str:
    """An open item of the web instance whose assessment is in the lake (a low score: not the top
    item, which other tests read)."""
    with session_scope(web_settings.resolved_ops_db_url) as s:
        return s.scalars(
            select(RiskQueueItem.assessment_id)
            .where(RiskQueueItem.status == "open", RiskQueueItem.kind == "declaration")
            .order_by(RiskQueueItem.score, RiskQueueItem.assessment_id)
            .limit(1)
        ).one()


@pytest.fixture
def lake_item(web_settings) -> Iterator[str]:
    """An open item whose assessment is in the lake; its state is put back afterwards."""
    aid = open_declaration(web_settings)
    yield aid
    with session_scope(web_settings.resolved_ops_db_url) as s:
        back = s.get(RiskQueueItem, aid)
        back.status, back.assigned_to, back.assigned_at = "open", None, None


def _shown(fragment: str) -> str:
    """A fragment's text as the page shows it (names are marked as data: ``<span translate="no">``)."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _take_as(web_settings, aid: str, who: str) -> None:
    with session_scope(web_settings.resolved_ops_db_url) as s:
        taken = s.get(RiskQueueItem, aid)
        taken.status, taken.assigned_to, taken.assigned_at = "assigned", who, datetime.now(UTC)


def test_a_record_taken_by_someone_else_offers_no_forms_to_another_officer(as_user, web_settings, lake_item):
    _take_as(web_settings, lake_item, "hkiaoff")
    page = as_user("tom").get(f"/ui/risk/records/{lake_item}")
    assert page.status_code == 200
    assert forms(page.text) == set()
    status = _shown(re.search(r'<p id="item-status">(.*?)</p>', page.text, re.S).group(1))
    assert "assigned" in status and "taken by hkiaoff" in status
    note = _shown(re.search(r'<p class="notice" id="taken-note">(.*?)</p>', page.text, re.S).group(1))
    assert "hkiaoff has taken this record" in note and "supervisor" in note


def test_the_taker_and_a_supervisor_are_offered_the_forms(as_user, web_settings, lake_item) -> None:
    _take_as(web_settings, lake_item, "tom")
    mine = as_user("tom").get(f"/ui/risk/records/{lake_item}").text
    assert forms(mine) == {"inspection-form", "override-form", "release-form"}
    _take_as(web_settings, lake_item, "hkiaoff")
    boss = as_user("sue").get(f"/ui/risk/records/{lake_item}").text
    assert forms(boss) == {"inspection-form", "override-form", "release-form", "reassign-form"}
    assert 'id="taken-note"' not in boss


def test_an_open_record_is_offered_to_take(as_user, web_app, web_settings, lake_item) -> None:
    """Control: nobody has it; an officer may take it, or work it at once; an analyst reads only."""
    assert forms(as_user("tom").get(f"/ui/risk/records/{lake_item}").text) == {
        "inspection-form", "override-form", "take-form"
    }  # fmt: skip
    name = f"analyst-{uuid.uuid4().hex[:6]}"
    with session_scope(web_settings.resolved_ops_db_url) as s:
        create_user(s, name, ["analyst"], password=PASSWORD)
    with TestClient(web_app, raise_server_exceptions=False) as reader:
        assert forms(login(reader, name).get(f"/ui/risk/records/{lake_item}").text) == set()


def test_after_record_result_the_page_confirms_and_shows_the_result(as_user, web_settings) -> None:
    """The item stays done (with its result), as after the browser test's inspection."""
    lake_item = open_declaration(web_settings)
    tom = as_user("tom")
    before = tom.get(f"/ui/risk/records/{lake_item}").text
    form = re.search(r'<form [^>]*id="inspection-form"[^>]*>', before).group(0)
    assert 'data-done-msg="The inspection result is recorded."' in form  # shown after the reload
    csrf = re.search(r'data-csrf="([^"]+)"', before).group(1)
    body = {
        "assessment_id": lake_item, "outcome": "seizure", "findings": "cigarettes behind the panels",
        "inspected_on": str(datetime.now(UTC).date()),
    }  # fmt: skip
    answer = tom.post("/api/v1/risk/inspections", json=body, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 201, answer.text
    after = tom.get(f"/ui/risk/records/{lake_item}").text
    result = re.search(r'<section [^>]*id="inspection-result".*?</section>', after, re.S).group(0)
    assert "seizure" in result and "cigarettes behind the panels" in result
    assert answer.json()["inspection_id"] in result and "tom" in result
    assert forms(after) == set()


# --- a real-time assessment not yet in the lake ------------------------------------------------------


def test_a_fresh_real_time_assessment_opens_before_the_lake_has_it(web_app, web_settings, as_user, queued):
    """The real-time path's store (outbox and queue in one commit), no flusher: the queue lists the
    item at once, and its record page reads the assessment from the outbox, under the same office
    rule as the lake's."""
    mine = office()
    assessor = Assessor.load(web_settings, kinds=("declaration",))
    (a,) = assessor.assess("declaration", heavy_cheap(mine))
    queued.ids.append(a.assessment_id)
    with session_scope(web_settings.resolved_ops_db_url) as s:
        write(s, assessor.policy, [a])
    url = f"/ui/risk/records/{a.assessment_id}"
    page = as_user("tom").get(url)
    assert page.status_code == 200, page.text
    reasons = html.unescape(re.search(r'<ul id="reasons">(.*?)</ul>', page.text, re.S).group(1))
    assert "rule T-HEAVY-CHEAP" in reasons
    assert "The red lane was set by rule T-HEAVY-CHEAP, not by the score." in html.unescape(page.text)
    assert 'id="inspection-form"' in page.text
    with session_scope(web_settings.resolved_ops_db_url) as s:
        create_user(s, f"own-{mine}".lower(), ["targeting_officer"], office_code=mine, password=PASSWORD)
        create_user(s, f"far-{mine}".lower(), ["targeting_officer"], office_code=office(), password=PASSWORD)
    with TestClient(web_app, raise_server_exceptions=False) as own:
        assert login(own, f"own-{mine}".lower()).get(url).status_code == 200
    with TestClient(web_app, raise_server_exceptions=False) as far:
        refused = login(far, f"far-{mine}".lower()).get(url)
        assert refused.status_code == 404 == far.get("/ui/risk/records/no-such-id").status_code
        assert "T-HEAVY-CHEAP" not in refused.text
