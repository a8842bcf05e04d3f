"""A rate factor's counts in the reader's language (decision 0115): the inspections and frauds its
code carries, said in Chinese on the record page (with the whole sentence, decision 0118)."""

from __future__ import annotations

import html
import re
import uuid

import pytest

from sciti.ops import session_scope
from sciti.risk import features
from sciti.risk.engine import Assessor
from sciti.risk.engine.store import write
from sciti.web.i18n import Translator
from sciti.web.words import factor_words, reason_words
from tests.risk.engine.conftest import train_model, with_model
from tests.web.test_i18n import ZH, _client, english_on
from tests.web.test_queue_record_work import Queued

RATE = {"code": "factor", "feature": "exporter_hit_rate", "value": 0.3089, "contribution": 0.18}


@pytest.mark.parametrize(
    ("counts", "words"),
    [
        ({"inspections": 2429, "frauds": 517, "critical": False, "unit": "declaration", "overall": 0.2151,
          "pulled": False}, "（過去 2,429 次查驗中 517 次查獲違規；貢獻 +0.18）"),
        ({"inspections": 7, "frauds": 4, "critical": False, "unit": "declaration", "overall": 0.2151,
          "pulled": True}, "（過去 7 次查驗中 4 次查獲違規，因查驗次數少而向整體比率 22% 拉近；貢獻 +0.18）"),
        ({"inspections": 355, "frauds": 116, "critical": False, "unit": "item", "overall": 0.2151,
          "pulled": False}, "（過去查驗的 355 項貨物中 116 項查獲違規；貢獻 +0.18）"),
        ({"inspections": 12, "frauds": None, "critical": True, "unit": "item", "overall": 0.0106,
          "pulled": True}, "（依過去查驗的 12 項貨物，因查驗次數少而向整體比率 1% 拉近；貢獻 +0.18）"),
        ({"inspections": 0, "frauds": 0, "critical": False, "unit": "declaration", "overall": 0.2151,
          "pulled": False}, "（過去沒有查驗：採用整體比率 22%；貢獻 +0.18）"),
    ],
)  # fmt: skip
def test_a_rates_counts_are_said_in_chinese(counts: dict, words: str) -> None:
    t = Translator(ZH)
    label = t.column("exporter_hit_rate")
    assert factor_words(t, "declaration", RATE | counts) == f"{label}：31%{words}"
    (shown,) = reason_words(t, "declaration", ["(the English)"], [RATE | counts])  # the code: same words
    assert words in str(shown.html) and english_on(f"<p>{shown.html}</p>") == []
    # A factor without counts (stored before 0115, or no rate) reads as it did.
    assert factor_words(t, "declaration", RATE) == f"{label}：31%（貢獻 +0.18）"


def test_the_record_page_says_a_rates_counts_in_chinese(web_app, web_settings) -> None:
    """A real KCS goods item assessed in real time: its rate factors show their counts in Chinese,
    the same counts the engine's English sentence beside them quotes."""
    queued = Queued(web_settings)
    model = train_model(web_settings, features.load_reference(web_settings))  # as the web instance's
    assessor = with_model(Assessor.load(web_settings, kinds=("declaration",)), model)
    office = f"W{uuid.uuid4().hex[:8].upper()}"
    for row in features.lake_records(web_settings, "declaration").slice(0, 40).to_pylist():
        item = {**row, "office_code": office}
        (a,) = assessor.assess(
            "declaration", [{**item, "record_id": row["declaration_record_id"], "items": [item]}]
        )
        counted = [f for f in a.factors if f.evidence and f.evidence["inspections"] and f.evidence["frauds"]]
        if counted:
            break
    assert counted, "some KCS item's factors quote a rate with inspections behind it"
    queued.ids.append(a.assessment_id)
    try:
        with session_scope(web_settings.resolved_ops_db_url) as s:
            write(s, assessor.policy, [a])
        with _client(web_app, "sue") as zh:
            page = zh.get(f"/ui/risk/records/{a.assessment_id}").text
        shown = re.search(r'<ul class="factors" id="factors">(.*?)</ul>', page, re.S).group(1)
        for f in counted:
            n, frauds = f.evidence["inspections"], f.evidence["frauds"]
            said = (
                f"過去 {n:,} 次查驗中 {frauds:,} 次查獲"
                if f.evidence["unit"] == "declaration"
                else (f"過去查驗的 {n:,} 項貨物中 {frauds:,} 項查獲")
            )
            assert said in shown, (said, shown)
            assert f" in {n:,} " in f.text  # the same counts as the English sentence
            assert html.escape(f.text) not in shown  # said whole in Chinese, no English beside (0118)
        assert english_on(shown) == []
    finally:
        queued.clear()
