"""The record page lists customs' responses to the declaration (decision 0122): found by the MRN or
by the LRN the declaration was stored under, with the duties customs assessed, and it says which
MRN customs gave a declaration stored under its LRN."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from sqlalchemy import select

from sciti.lake import open_lake
from sciti.model import get_kind
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskQueueItem
from tests.web.test_i18n import _client

MRN = "26HK0000RESPONSE01"


def rows_where(lake, ident: str, column: str, value: str) -> list[dict]:
    table = lake.table(ident).scan().to_arrow()
    return table.filter(pa.compute.equal(pa.compute.field(column), value)).to_pylist()


@pytest.fixture(scope="module")
def answered(web_settings) -> dict:
    """A customs response to the second queued declaration, naming it as the LRN."""
    with session_scope(web_settings.resolved_ops_db_url) as s:
        items = s.scalars(select(RiskQueueItem).order_by(RiskQueueItem.score.desc()).limit(3)).all()
        answered_item, other = items[1], items[2]
    lake = open_lake(web_settings.resolved_catalog_uri, web_settings.resolved_warehouse)
    [declaration] = rows_where(lake, "std.declarations", "record_id", answered_item.record_id)
    kind = get_kind("customs_response")
    row = {
        "record_id": "planted-response-1",
        "source": "wco-dec",
        "batch_id": "planted",
        "locator": "res.xml#/Response",
        "ingested_at": datetime.now(UTC),
        "response_id": "planted-response-1",
        "declaration_id": MRN,
        "lrn": declaration["declaration_id"],
        "declaration_version": 1,
        "function_code": "13",
        "status_code": "67",
        "issue_datetime": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
        "duty_tax_total": Decimal("2262.40"),
        "payment_total": Decimal("2262.40"),
        "currency": "GBP",
        "duty_line_count": 4,
    }
    lake.ensure_table(kind.ident, kind.arrow_schema())
    lake.append(kind.ident, pa.Table.from_pylist([row], schema=kind.arrow_schema()))
    # Customs' duty lines for the declaration's items (the test world's declarations state none).
    items = rows_where(lake, "std.declaration_items", "parent_record_id", answered_item.record_id)
    duty = get_kind("customs_response_duty")
    lines = [
        {
            **{k: row[k] for k in ("source", "batch_id", "locator", "ingested_at", "response_id")},
            "record_id": f"planted-duty-{i['item_number']}",
            "parent_record_id": row["record_id"],
            "item_number": i["item_number"],
            "line_number": 1,
            "tax_type": "A00",
            "assessed_amount": Decimal("123.45"),
            "payment_amount": Decimal("123.45"),
            "currency": "HKD",
        }
        for i in items
    ]
    lake.ensure_table(duty.ident, duty.arrow_schema())
    lake.append(duty.ident, pa.Table.from_pylist(lines, schema=duty.arrow_schema()))
    return {"answered": answered_item.assessment_id, "other": other.assessment_id}


def test_the_record_page_lists_the_response_and_names_the_mrn(as_user, answered):
    page = as_user("tom").get(f"/ui/risk/records/{answered['answered']}")
    assert page.status_code == 200
    shown = html.unescape(page.text)
    assert 'id="responses"' in page.text and "Customs responses (duties assessed)" in shown
    assert "2262.4" in shown and "planted-response-1" in shown
    assert f"Customs gave this declaration the MRN {MRN}" in shown


def test_a_declaration_without_a_response_shows_none(as_user, answered):
    page = as_user("tom").get(f"/ui/risk/records/{answered['other']}")
    assert page.status_code == 200 and 'id="responses"' not in page.text


def test_the_section_speaks_the_readers_language(web_app, answered):
    page = _client(web_app, "tom").get(f"/ui/risk/records/{answered['answered']}")
    assert "海關回覆（核定稅費）" in page.text and f"海關已核發本報單的 MRN {MRN}" in page.text


def test_the_duty_lines_of_the_latest_response_are_shown(as_user, answered):
    page = as_user("tom").get(f"/ui/risk/records/{answered['answered']}")
    shown = html.unescape(page.text)
    assert "Duty and tax lines of the latest response (it answers version 1, issued 2026-11-20" in shown
    lines = page.text[page.text.index('id="duty-lines"') :]
    assert "<td>A00</td>" in lines and "123.45" in lines[: lines.index("</table>")]
    # These declarations state no duty: there is nothing to compare.
    assert 'id="duties-compared"' not in page.text


def test_the_duty_lines_follow_the_readers_language(web_app, answered):
    page = _client(web_app, "tom").get(f"/ui/risk/records/{answered['answered']}")
    assert "最新回覆之稅費明細" in page.text
