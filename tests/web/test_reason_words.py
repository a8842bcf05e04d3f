"""The risk engine's reasons in the reader's language (decision 0107): each line said from its code,
what a person wrote or the record holds shown as written and marked as data; a line without a code
(an assessment stored before codes were kept) shown as the engine wrote it, marked."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator

import pytest
from markupsafe import escape
from sqlalchemy import select, update

from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskOutbox, RiskQueueItem
from sciti.risk.engine import Assessor
from sciti.risk.engine.reasons import said_text
from sciti.risk.engine.store import write
from sciti.web.i18n import Translator
from sciti.web.words import reason_words
from tests.risk.engine.test_reason_codes import EXAMPLES
from tests.risk.engine.test_store import heavy_cheap
from tests.web.test_i18n import WORD, ZH, _client, english_on, english_words
from tests.web.test_queue_record_work import Queued

FACTOR = (
    {"code": "factor", "item": 2, "feature": "hs_origin_risk", "value": 0.23, "contribution": 0.41},
    "Item 2: HS 847130 from CN was found fraudulent in 23% of past inspections (contributes +0.41)",
)
SAID = [*EXAMPLES, FACTOR]


@pytest.mark.parametrize(("said", "line"), SAID, ids=[f"{s['code']}-{i}" for i, (s, _) in enumerate(SAID)])
def test_each_code_is_said_in_chinese_with_what_is_written_marked(said: dict, line: str) -> None:
    (shown,) = reason_words(Translator(ZH), "declaration", [line], [said_text(said)])
    assert shown.translated and shown.code == said["code"], shown
    assert english_on(f"<p>{shown.html}</p>") == [], shown.html
    # A title holds the plain words: all its English is named in data-keep (what is shown as written).
    kept = set(WORD.findall(shown.kept))
    assert [w for w in english_words(shown.plain) if w not in kept] == [], (shown.plain, shown.kept)
    if "item" in said:
        assert shown.plain.startswith(f"第 {said['item']} 項貨物：")


@pytest.mark.parametrize(
    ("said", "words"),
    [
        (EXAMPLES[0][0], '<span translate="no">Duty 13.0% on goods of origin CN</span>（規則 '
                         '<span translate="no">T-CN-DUTY</span> 第 1 版，加 45 分）'),
        (EXAMPLES[1][0], "（規則 <span translate=\"no\">PAX-WATCHLIST-01</span> 第 3 版，直接定為紅線）"),
        (EXAMPLES[3][0], "HS 編碼的代碼不明（<span translate=\"no\">999999</span>）"),
        (EXAMPLES[6][0], '屬 <span translate="no">2021-01-01</span> 至 <span translate="no">2021-03-31'
                         "</span> 期間評分的報關單中最高的 1.2%"),
        (EXAMPLES[11][0], "獲隨機合規抽查選中（抽查 2.0% 的紀錄）"),
        (EXAMPLES[12][0], "已用完：改列黃線（文件審核）"),
    ],
)  # fmt: skip
def test_the_chinese_words_of_some_codes(said: dict, words: str) -> None:
    (shown,) = reason_words(Translator(ZH), "declaration", ["(the English)"], [said])
    assert words in str(shown.html), shown.html


def test_an_english_page_shows_the_engines_sentences_as_stored() -> None:
    lines = [line for _, line in SAID]
    shown = reason_words(Translator("en"), "declaration", lines, [said_text(s) for s, _ in SAID])
    assert [s.html for s in shown] == [escape(line) for line in lines]
    assert all(s.translated for s in shown)


@pytest.mark.parametrize(
    "codes",
    [
        None,  # stored before codes were kept
        [said_text(EXAMPLES[5][0])],  # not line for line
        ["{not json", said_text(EXAMPLES[11][0])],
    ],
)
def test_lines_without_their_codes_are_the_engines_english_marked(codes) -> None:
    lines = [EXAMPLES[5][1], EXAMPLES[11][1]]
    shown = reason_words(Translator(ZH), "declaration", lines, codes)
    if codes and codes[0].startswith("{not"):
        assert [s.translated for s in shown] == [False, True]
    else:
        assert not any(s.translated for s in shown)
    first = shown[0]
    assert str(first.html) == f'<span data-untranslated="engine">{lines[0]}</span>'
    assert first.kept == first.plain == lines[0]


def test_a_code_of_a_newer_engine_is_shown_as_its_english() -> None:
    (shown,) = reason_words(Translator(ZH), "declaration", ["Something new"], [{"code": "new_code", "x": 1}])
    assert not shown.translated and "data-untranslated" in shown.html


# --- the pages ----------------------------------------------------------------------------------------


@pytest.fixture
def fresh(web_settings) -> Iterator[tuple[str, str]]:
    """A real-time assessment of its own office (a lane rule's red, the model's line and factors),
    stored as the real-time path stores it (outbox and queue), taken off again afterwards."""
    queued = Queued(web_settings)
    office = f"W{uuid.uuid4().hex[:8].upper()}"
    assessor = Assessor.load(web_settings, kinds=("declaration",))
    (a,) = assessor.assess("declaration", heavy_cheap(office))
    queued.ids.append(a.assessment_id)
    with session_scope(web_settings.resolved_ops_db_url) as s:
        write(s, assessor.policy, [a])
    yield a.assessment_id, office
    queued.clear()


def _reasons(page: str) -> str:
    return re.search(r'<ul id="reasons">(.*?)</ul>', page, re.S).group(1)


def _queue_cell(page: str, assessment_id: str) -> str:
    row = page.split(f"/ui/risk/records/{assessment_id}", 1)[1].split("</tr>", 1)[0]
    return re.search(r'<td class="clip".*?</td>', row, re.S).group(0)


def test_a_records_reasons_and_its_queue_line_in_chinese(web_app, fresh) -> None:
    aid, office = fresh
    with _client(web_app, "sue") as zh, _client(web_app, "sue", "en") as en:
        reasons = _reasons(zh.get(f"/ui/risk/records/{aid}").text)
        assert "data-untranslated" not in reasons and english_on(reasons) == []
        assert '第 <span translate="no">1</span> 項貨物：' in reasons
        assert '（規則 <span translate="no">T-HEAVY-CHEAP</span> 第 1 版，直接定為紅線）' in reasons
        assert "模型" in reasons and 'data-code="factor"' not in reasons  # factors: once, under the chart
        cell = _queue_cell(zh.get("/ui/risk/queue", params={"office": office}).text, aid)
        assert 'data-untranslated="engine">' not in cell.split(">", 1)[1]
        assert english_on(cell) == [] and "T-HEAVY-CHEAP" in cell
        english = html.unescape(_reasons(en.get(f"/ui/risk/records/{aid}").text))
        assert "Item 1: 30000.0 kg declared at 0.01 per kg (rule T-HEAVY-CHEAP v1, lane red)" in english


def test_reasons_stored_before_codes_are_shown_as_the_engine_wrote_them(web_app, web_settings, fresh) -> None:
    aid, office = fresh
    with session_scope(web_settings.resolved_ops_db_url) as s:  # as an older engine stored them
        payload = json.loads(
            s.scalars(select(RiskOutbox.payload).where(RiskOutbox.assessment_id == aid)).one()
        )
        del payload["reason_codes"]
        s.execute(
            update(RiskOutbox).where(RiskOutbox.assessment_id == aid).values(payload=json.dumps(payload))
        )
        s.execute(update(RiskQueueItem).where(RiskQueueItem.assessment_id == aid).values(reason_codes=None))
    with _client(web_app, "sue") as zh:
        reasons = _reasons(zh.get(f"/ui/risk/records/{aid}").text)
        lines = re.findall(r"<li[^>]*>(.*?)</li>", reasons, re.S)
        assert lines and all(line.startswith('<span data-untranslated="engine">') for line in lines)
        assert "(rule T-HEAVY-CHEAP v1, lane red)" in html.unescape(reasons)
        cell = _queue_cell(zh.get("/ui/risk/queue", params={"office": office}).text, aid)
        assert '<span data-untranslated="engine">' in cell and english_on(cell) == []
