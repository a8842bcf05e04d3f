"""The home page's hit rates and seizure forecast (decision 0090).

- The hit-rate panel of an account bound to an office counts that office only, as the rest of the
  dashboard does, and its window ends at the newest data, as the other panels' do: the web
  instance's KCS inspections are of 2021, its assessments of today.
- The seizure series begins at the first week with a seizure (zeros only for weeks without one
  inside the data), and a forecast needs ``MIN_FIT_WEEKS`` weeks. The seizures are written to a
  real lake here (the web instance has none).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sciti.access import Principal, create_user, permissions_of
from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.ops import migrate, session_scope
from sciti.ops.risk_tables import RiskQueueItem
from sciti.risk.engine import hit_report
from sciti.risk.engine.report import data_window
from sciti.web.dashboard import FORECAST_WEEKS, MIN_FIT_WEEKS, linear_forecast, seizure_trend
from sciti.web.i18n import Translator
from sciti.web.lakeview import lake_view
from sciti.web.render import TEMPLATES
from tests.conftest import make_settings
from tests.web.conftest import PASSWORD, login

NUM = r'<td class="num">(\d+)</td>'
HIT_ROW = re.compile(r"<tr><td>([\w-]+)[^\n]*</td>\s*" + NUM * 3)


def hit_panel(client: TestClient) -> tuple[dict[str, tuple[int, ...]], str]:
    """The hit-rate panel's rows (rule: hits, inspected, frauds) and its text."""
    panel = client.get("/ui/home/panels").text
    section = panel.split('id="h-hits"', 1)[1].split("</section>", 1)[0]
    rows = {m[0]: tuple(int(n) for n in m[1:]) for m in HIT_ROW.findall(section)}
    return rows, section


def reported(settings, office: str | None) -> dict[str, tuple[int, ...]]:
    window = data_window(settings, office=office)
    assert window is not None
    report = hit_report(settings, since=window[0], until=window[1], office=office)
    return {r["rule_id"]: (r["hits"], r["inspected"], r["frauds"]) for r in report["rules"]}


@pytest.fixture(scope="module")
def office(web_settings) -> str:
    """The office with the most queue items in the web instance."""
    with session_scope(web_settings.resolved_ops_db_url) as s:
        return s.execute(
            select(RiskQueueItem.office_code)
            .where(RiskQueueItem.office_code.is_not(None))
            .group_by(RiskQueueItem.office_code)
            .order_by(func.count().desc())
        ).first()[0]


@pytest.fixture(scope="module")
def bound(web_app, web_settings, office):
    """A targeting officer bound to that office, logged in (the reviewer's account)."""
    with session_scope(web_settings.resolved_ops_db_url) as s:
        create_user(s, "tom-hits", ["targeting_officer"], office_code=office, password=PASSWORD)
    with TestClient(web_app, raise_server_exceptions=False) as c:
        yield login(c, "tom-hits")


def test_an_office_bound_officer_sees_its_offices_hit_rates(bound, as_user, web_settings, office):
    mine, mine_text = hit_panel(bound)
    everyone, everyone_text = hit_panel(as_user("sue"))
    assert mine != everyone  # the leak: the same figures as an account of every office
    assert sum(r[0] for r in mine.values()) < sum(r[0] for r in everyone.values())
    assert mine == reported(web_settings, office)
    assert everyone == reported(web_settings, None)
    sample = re.compile(r"Random compliance sample: (\d+) inspected")
    assert sample.search(mine_text) and sample.search(everyone_text)


def test_the_hit_panel_ends_at_the_newest_data_and_says_when(as_user, web_settings):
    """KCS inspected in 2021 and was scored today: a window of the wall clock's last 90 days held
    no inspection, so every rule showed 0 inspected and no hit rate."""
    rows, text = hit_panel(as_user("sue"))
    assert any(inspected > 0 for _, inspected, _ in rows.values())
    assert re.search(r'<td class="num">\d+ %</td>', text)  # a hit rate, not "—"
    lake = open_lake(web_settings.resolved_catalog_uri, web_settings.resolved_warehouse)
    (newest_assessment,) = query(lake, "SELECT CAST(max(assessed_at) AS DATE) FROM risk.assessments").column(
        0
    )
    # The window is the report's own (results linked to assessments, decision 0090): other tests
    # of this module's instance may add results that no assessment names.
    window = data_window(web_settings)
    assert window is not None
    first, until = window
    assert until - timedelta(days=1) >= newest_assessment.as_py()  # ends with the newest data
    assert first.year == 2021  # reaches back to the results KCS holds, months before the scoring
    assert f"from {first.isoformat()} to {(until - timedelta(days=1)).isoformat()}" in text


# -- seizures ------------------------------------------------------------------------------------
VIEWER = Principal(1, "v", "", ("viewer",), None, frozenset(permissions_of(("viewer",))))
FIRST = date(2026, 3, 2)  # a Monday: weeks start on Mondays
FLAT = [18, 10, 27, 15, 22, 12, 25, 14, 20]  # nine weeks of 10-27 a week, no trend


@pytest.fixture
def seizures(tmp_path):
    """``write({office: [count per week from FIRST], ...})``, then ``trend(principal)``."""
    home = tmp_path / "instance"
    home.mkdir()
    s = make_settings(home)
    migrate(s.resolved_ops_db_url)
    lake = open_lake(s.resolved_catalog_uri, s.resolved_warehouse)
    kind = get_kind("seizure")

    def write(weeks: dict[str, list[int]], start: date = FIRST) -> None:
        rows = []
        for office, counts in weeks.items():
            for w, n in enumerate(counts):
                day = datetime.combine(start + timedelta(weeks=w, days=w % 5), datetime.min.time(), UTC)
                rows += [
                    {f.name: None for f in kind.arrow_schema()}
                    | {"record_id": f"{office}-{w}-{i}", "source": "t", "batch_id": "b",
                       "ingested_at": datetime.now(UTC), "seizure_id": f"S-{office}-{w}-{i}",
                       "item_number": 1, "seized_at": day + timedelta(hours=i % 20), "office_code": office,
                       "goods_description": "cigarettes", "reason": "undeclared"}
                    for i in range(n)
                ]  # fmt: skip
        lake.ensure_zones()
        lake.ensure_table(kind.ident, kind.arrow_schema())
        lake.append(kind.ident, pa.Table.from_pylist(rows, schema=kind.arrow_schema()))

    def trend(principal: Principal = VIEWER) -> dict:
        with lake_view(lake, principal, ("std.seizures",), need_to_know=False) as view:
            return seizure_trend(view)

    return write, trend


def test_the_series_starts_at_the_first_seizure_and_the_forecast_is_flat(seizures):
    """The reviewer's case: 17 empty weeks were put before 9 flat ones and fitted as a rise."""
    write, trend = seizures
    write({"HKIA": FLAT})
    out = trend()
    assert out["weeks"][0] == FIRST.isoformat() and len(out["weeks"]) == len(FLAT)
    assert out["counts"] == FLAT
    assert out["forecast"] == linear_forecast(FLAT, FORECAST_WEEKS)
    assert max(out["forecast"]["mean"]) < max(FLAT)  # no false rise from the empty weeks
    assert out["ahead"][0] == (FIRST + timedelta(weeks=len(FLAT))).isoformat()


def test_a_week_without_seizures_inside_the_data_is_a_zero(seizures):
    write, trend = seizures
    counts = FLAT[:4] + [0] + FLAT[5:]
    write({"HKIA": counts})
    assert trend()["counts"] == counts


def test_too_few_weeks_give_no_forecast_and_say_so(seizures):
    write, trend = seizures
    write({"HKIA": [4, 9, 6]})
    out = trend()
    assert out["counts"] == [4, 9, 6]
    assert out["forecast"]["mean"] == [] and out["ahead"] == []
    assert out["min_weeks"] == MIN_FIT_WEEKS == 8
    html = render_seizures(out)
    assert "No forecast yet: a trend line needs at least 8 weeks" in html and "there are 3." in html
    assert "至少 8 週" in render_seizures(out, "zh-Hant")


def test_an_office_series_starts_at_its_own_first_seizure(seizures):
    """An office-bound account's series is its office's: another office's earlier seizures do not
    move its start (nor, before, put zeros in front of it)."""
    write, trend = seizures
    write({"HKIA": FLAT, "KTCT": [3] * 20}, start=FIRST)
    write({"LWCT": [5] * 10}, start=FIRST + timedelta(weeks=10))
    bound = Principal(2, "b", "", ("viewer",), "LWCT", frozenset(permissions_of(("viewer",))))
    out = trend(bound)
    assert out["weeks"][0] == (FIRST + timedelta(weeks=10)).isoformat() and out["counts"] == [5] * 10
    assert len(trend()["weeks"]) == 20  # every office: from the first seizure of any


def test_more_weeks_than_shown_keep_the_last_26(seizures):
    """Control: with data before the window, the window's first weeks are real weeks of data."""
    write, trend = seizures
    write({"HKIA": [2] * 30})
    out = trend()
    assert len(out["weeks"]) == 26 and out["weeks"][0] == (FIRST + timedelta(weeks=4)).isoformat()


def test_the_forecast_says_which_weeks_it_fits(seizures):
    write, trend = seizures
    write({"HKIA": FLAT})
    html = render_seizures(trend())
    last = (FIRST + timedelta(weeks=len(FLAT) - 1)).isoformat()
    assert f"fitted to the 9 weeks from {FIRST.isoformat()} to {last}" in html


def render_seizures(seizures: dict, lang: str = "en") -> str:
    """The panels' template with only the seizure panel, as the page renders it."""
    template = TEMPLATES.env.get_template("home_panels.html")
    return template.render(data={"seizures": seizures}, t=Translator(lang), user=VIEWER, root="/ui")
