"""Risk words with no English left on a Chinese page (decision 0118): a model factor's whole
sentence said from the template that made its English and the record's values it names, and a
champion that cannot be loaded said from its error's code, not from the loader's English."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest

from sciti.ops import session_scope
from sciti.risk import features
from sciti.risk.engine import Assessor
from sciti.risk.engine import reasons as rc
from sciti.risk.engine.store import write
from sciti.risk.features.catalog import SUBJECT_KINDS, columns
from sciti.risk.models.scoring import said_of
from sciti.web.i18n import Translator, catalogue
from sciti.web.words import factor_sentence, reason_words
from tests.risk.engine.conftest import train_model, with_model
from tests.web.test_i18n import ZH, _client, english_on
from tests.web.test_queue_record_work import Queued

RATE = {
    "code": "factor", "feature": "trader_hit_rate", "value": 0.4, "contribution": 0.31, "inspections": 10,
    "frauds": 4, "critical": False, "unit": "declaration", "overall": 0.22, "pulled": True,
    "template": "explain", "named": {"importer_id": "IMP1"},
}  # fmt: skip


def _shown(said: dict, kind: str = "declaration") -> str:
    (line,) = reason_words(Translator(ZH), kind, ["(the English)"], [said])
    assert line.translated and "data-untranslated" not in line.html, line.html
    assert english_on(f"<p>{line.html}</p>") == [], line.html
    return str(line.html)


def test_every_factor_template_has_chinese_words() -> None:
    zh = catalogue(ZH)
    for kind in SUBJECT_KINDS:
        for name, info in columns(kind).items():
            for form in ("explain", "explain_no", "explain_unseen"):
                if getattr(info, form):
                    assert f"{form}.{kind}.{name}" in zh, (form, kind, name)
    # The English is features.yaml's own template, not a copy in the catalogue.
    en = catalogue("en")
    assert en["explain.declaration.trader_hit_rate"] == columns("declaration")["trader_hit_rate"].explain


@pytest.mark.parametrize(
    ("said", "kind", "words"),
    [
        (RATE, "declaration",
         '進口人 <span translate="no">IMP1</span>：估計違規率 40%（過去 10 次查驗中 4 次查獲違規，'
         "因查驗次數少而向整體比率 22% 拉近）（貢獻 +0.31）"),
        # a rate of training or evaluation: no counts, how such a rate is made
        ({**RATE, "inspections": None, "frauds": None}, "declaration",
         "估計違規率 40%（依過去查驗中查獲違規的比例，查驗次數少時向整體比率拉近）"),
        ({"code": "factor", "feature": "trader_hit_rate", "value": 0.22, "contribution": 0.1,
          "template": "explain_unseen", "named": {"importer_id": "IMP9"}}, "declaration",
         '進口人 <span translate="no">IMP9</span> 過去沒有查驗：採用整體違規率 22%（貢獻 +0.10）'),
        ({"code": "factor", "item": 3, "feature": "unit_value", "value": 803.5, "contribution": 1.28,
          "template": "explain", "named": {"national_currency": "KRW", "currency": None}}, "declaration",
         '第 <span translate="no">3</span> 項貨物：申報單價為每公斤 803.50（完稅價格以 '
         '<span translate="no">KRW</span> 計，未申報完稅價格者為貨品價格；貨品幣別：不明）（貢獻 +1.28）'),
        ({"code": "factor", "feature": "aeo", "value": False, "contribution": 0.2, "template": "explain_no",
          "named": {"importer_id": "IMP1"}}, "declaration",
         '進口人 <span translate="no">IMP1</span> 不是優質企業（AEO）（貢獻 +0.20）'),
        ({"code": "factor", "feature": "threshold_ratio", "value": 0.95, "contribution": 0.7,
          "template": "explain", "named": {"national_currency": "HKD", "cash_reporting_threshold": 120000}},
         "currency_declaration",
         '金額為申報門檻（<span translate="no">HKD</span> 120,000）的 95%（貢獻 +0.70）'),
    ],
)  # fmt: skip
def test_a_factor_is_said_whole_in_chinese(said: dict, kind: str, words: str) -> None:
    assert words in _shown(said, kind)


def test_a_factor_no_template_says_is_its_label_and_value() -> None:
    # "Import type is 11 (contributes -0.01)": the label and value are the whole sentence
    plain = {"code": "factor", "feature": "import_type", "value": "11", "contribution": -0.01}
    words = _shown(plain | {"template": None, "named": {}})
    assert words.endswith('<span translate="no">11</span>（貢獻 -0.01）'), words


def test_a_factor_kept_without_its_template_keeps_the_english_beside_it() -> None:
    t = Translator(ZH)
    old = {k: v for k, v in RATE.items() if k not in ("template", "named")}  # scored before 0118
    assert factor_sentence(t, "declaration", old) is None
    (line,) = reason_words(t, "declaration", ["Importer IMP1: estimated fraud rate 40%"], [old])
    assert 'data-untranslated="engine">Importer IMP1' in line.html


def test_the_codes_name_what_the_english_names() -> None:
    row = {"trader_hit_rate": 0.4, "importer_id": "IMP1", "unit_value": 12.5, "currency": "  "}
    rate = said_of("declaration", "trader_hit_rate", row)
    assert rate == {"template": "explain", "named": {"importer_id": "IMP1"}}
    assert said_of("declaration", "unit_value", row) == {
        "template": "explain",
        "named": {"national_currency": "HKD", "currency": None},  # blank: "unknown" in the English
    }
    assert said_of("declaration", "aeo", {"aeo": False, "importer_id": "X"})["template"] == "explain_no"
    missing = said_of("declaration", "unit_value", {"unit_value": None})  # "Missing: ...": no template
    assert missing == {"template": None, "named": {}}
    threshold = said_of("currency_declaration", "threshold_ratio", {"threshold_ratio": 0.9})
    assert threshold["named"]["cash_reporting_threshold"] == 120000 and not isinstance(
        threshold["named"]["cash_reporting_threshold"], Decimal
    )  # a number the code's JSON can hold


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (rc.LoadFailure("model m7 cannot be loaded from object ab12: damaged", "model_load_error", "m7"),
         '報關單的冠軍模型 <span translate="no">m7</span> 無法載入（無法載入風險模型），只按規則評分'),
        (rc.LoadFailure("the model registry is not installed (No module named x)", "model_load_error"),
         "報關單的冠軍模型無法載入（無法載入風險模型），只按規則評分"),
    ],
)  # fmt: skip
def test_a_champion_that_cannot_be_loaded_is_said_from_its_code(failure, words) -> None:
    said = rc.model("declaration", None, 0, failure, None, rc.NO_ITEM)
    assert said["why"] == str(failure) and said["cause"] == "failed"  # the English kept, as before
    assert rc.english(said) == f"No model for declaration: {failure}; scored with rules only"
    assert words in _shown(said)


def test_the_record_page_and_the_queue_say_every_factor_in_chinese(web_app, web_settings) -> None:
    """Real KCS declarations assessed in real time: every factor line on the record page and in
    the queue's cell is Chinese, the record's values marked as data, no English sentence beside."""
    queued = Queued(web_settings)
    model = train_model(web_settings, features.load_reference(web_settings))  # as the web instance's
    assessor = with_model(Assessor.load(web_settings, kinds=("declaration",)), model)
    office = f"W{uuid.uuid4().hex[:8].upper()}"
    rows = features.lake_records(web_settings, "declaration").slice(0, 12).to_pylist()
    made = []
    for row in rows:
        item = {**row, "office_code": office}
        (a,) = assessor.assess(
            "declaration", [{**item, "record_id": row["declaration_record_id"], "items": [item]}]
        )
        made.append(a)
    named = [f for a in made for f in a.factors if f.said and f.said["named"]]
    assert named, "some factor names the record's values (importer, HS code)"
    for f in named:  # the code names what the English names
        assert all(str(v) in f.text for v in f.said["named"].values() if v is not None), f
    queued.ids += [a.assessment_id for a in made]
    try:
        with session_scope(web_settings.resolved_ops_db_url) as s:
            write(s, assessor.policy, made)
        with _client(web_app, "sue") as zh:
            for a in made:
                page = zh.get(f"/ui/risk/records/{a.assessment_id}").text
                shown = re.search(r'<ul class="factors" id="factors">(.*?)</ul>', page, re.S).group(1)
                assert "data-untranslated" not in shown and english_on(shown) == [], shown
                assert shown.count("貢獻") == len(a.factors)
                reasons = re.search(r'<ul id="reasons">(.*?)</ul>', page, re.S).group(1)
                assert "data-untranslated" not in reasons, reasons
            queue = zh.get("/ui/risk/queue", params={"office": office, "status": "any"}).text
        cells = re.findall(r'<td class="clip"[^>]*>.*?</td>', queue, re.S)
        assert cells and all("data-untranslated" not in c and english_on(c) == [] for c in cells)
        assert "contributes" not in queue and "estimated fraud rate" not in queue
    finally:
        queued.clear()
