"""The pages in Traditional Chinese: no English the web layer owns, every message key in both
catalogues, error pages in the reader's language.

The main pages are rendered for real (every role that opens them) with ``sciti_lang=zh-Hant``; the
words a person sees (text and the attributes a browser shows: titles, placeholders, labels for
screen readers, confirmations, chart names) must hold no English word. What is not the web
layer's to translate is marked in the templates and left out of the check:

- data, shown as stored: ``<code>``, ``<pre>``, ``<textarea>`` and anything inside an element with
  ``translate="no"`` (a username, a rule's title, a record's values); ``data-keep`` names the data
  an element's attributes hold (a confirmation that names the user);
- words another layer wrote in English with no key beside them, marked ``data-untranslated``: the
  risk engine's reasons and the rule engine's dry-run notes kept without codes, an ingest's
  quarantine reason, the server's own words beside a message said in other words (docs/web.md,
  *Language*);
- text in another language on purpose (``lang="en"``: the English button).

Acronyms and codes (all capitals: HS, AEO, SQL, ROC AUC, CN) and dotted or slashed codes
(``std.declarations``, ``docs/risk-rules.md``) are allowed, and so are the few words in ALLOWED.
"""

from __future__ import annotations

import ast
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from markupsafe import Markup
from sqlalchemy import select

from sciti.errors import SCITIError
from sciti.ops import session_scope
from sciti.ops.risk_tables import RiskQueueItem
from sciti.web.i18n import Translator, catalogue, keep
from sciti.web.labels import column_names, english_label
from tests.web.conftest import login

WEB = Path(__file__).resolve().parents[2] / "src" / "sciti" / "web"
ZH = "zh-Hant"
# Words a Chinese page may show: a file format's name and units of measure.
ALLOWED = {"Parquet", "kg", "km"}
# Where nothing is to be translated: code, stored text, scripts.
EXEMPT_TAGS = {"code", "pre", "textarea", "kbd", "samp", "script", "style"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt", "data-confirm", "data-done-msg"}
CODE = re.compile(r"[A-Za-z0-9]+(?:[./:][A-Za-z0-9_-]+)+")  # std.declarations, rule:T-CN-DUTY
HOLE = re.compile(r"\{\w+\}")  # a placeholder the page's script fills in (data-msg-ok="... {entries} ...")
WORD = re.compile(r"[A-Za-z]+")


def english_words(text: str) -> list[str]:
    """Words of ``text`` that are English: letters, not all capitals, more than one letter."""
    plain = CODE.sub(" ", HOLE.sub(" ", text))
    return [w for w in WORD.findall(plain) if len(w) > 1 and not w.isupper() and w not in ALLOWED]


def _chart_words(spec: dict[str, Any]) -> list[str]:
    """What a chart shows in words: its title, axis names, series names, categories."""
    out = [spec.get("title"), spec.get("xName"), spec.get("yName"), *(spec.get("names") or [])]
    out += [s.get("name") for s in spec.get("series") or []]
    out += [x for x in spec.get("x") or [] if isinstance(x, str)]
    return [str(w) for w in out if w]


class Shown(HTMLParser):
    """The words a person sees on a page, outside what is marked as not the page's to translate."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, exempt)
        self.found: list[tuple[str, str]] = []  # (where, text)

    def _exempt(self, tag: str, attrs: dict[str, str | None]) -> bool:
        inherited = bool(self.stack and self.stack[-1][1])
        lang = attrs.get("lang")
        return (
            inherited
            or tag in EXEMPT_TAGS
            or attrs.get("translate") == "no"
            or "data-untranslated" in attrs
            or (lang is not None and not lang.startswith("zh"))
        )

    def handle_starttag(self, tag: str, pairs: list[tuple[str, str | None]]) -> None:
        attrs = dict(pairs)
        exempt = self._exempt(tag, attrs)
        if not exempt:
            kept = set(WORD.findall(attrs.get("data-keep") or ""))
            for name, value in attrs.items():
                if not value:
                    continue
                if name in SHOWN_ATTRIBUTES or name.startswith("data-msg-"):
                    words = [w for w in english_words(value) if w not in kept]
                    if words:
                        self.found.append((f"<{tag} {name}>", value))
                elif name == "data-chart":
                    for text in _chart_words(json.loads(value)):
                        self.found.append((f"<{tag}> chart", text))
        if tag not in VOID:
            self.stack.append((tag, exempt))

    def handle_startendtag(self, tag: str, pairs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, pairs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1][1]) and data.strip():
            self.found.append((self.stack[-1][0] if self.stack else "", data.strip()))


def english_on(page: str) -> list[tuple[str, str, list[str]]]:
    """(where, text, its English words) of every shown text with English words in it."""
    parser = Shown()
    parser.feed(page)
    return [(where, text, english_words(text)) for where, text in parser.found if english_words(text)]


def test_the_check_finds_english_and_lets_data_through() -> None:
    page = """<html lang="zh-Hant"><body><h1>風險佇列 Risk queue</h1>
      <td translate="no">alice</td><code>country_of_origin</code><td>HS 編碼 · AEO · ROC AUC</td>
      <li data-untranslated="engine">Model m1 gives 99 out of 100</li><button lang="en">English</button>
      <form data-confirm="確定停用 bob？" data-keep="bob"></form><span title="supervisor">主管</span>
      <p>請參閱 docs/risk-rules.md 與 std.declarations</p><dt>country_of_origin</dt><br>
      <div data-chart='{"x": ["green"], "series": [{"name": "分數"}]}'></div>
      <p>淨重（kg）</p></body></html>"""
    found = english_on(page)
    assert [words for _, _, words in found] == [
        ["Risk", "queue"],
        ["supervisor"],
        ["country", "of", "origin"],
        ["green"],
    ]


# --- the pages ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_version(web_settings) -> str:
    """A registered model version, so the models page lists metrics and draws curves."""
    from sciti.risk.models import train

    return train(web_settings, "declaration", actor="ana", params={"num_boost_round": 5})["version"]


@pytest.fixture(scope="module")
def top_item(web_settings) -> str:
    with session_scope(web_settings.resolved_ops_db_url) as s:
        return s.scalars(select(RiskQueueItem.assessment_id).order_by(RiskQueueItem.score.desc())).first()


def _client(web_app, person: str | None, lang: str = ZH) -> TestClient:
    """A browser showing ``lang`` whatever the person chose (their choice is left as it is)."""
    client = TestClient(web_app, raise_server_exceptions=False)
    if person:
        login(client, person)  # sets the person's saved language, if they have one
    client.cookies.delete("sciti_lang")
    client.cookies.set("sciti_lang", lang)
    return client


def _csrf(client: TestClient) -> str:
    return re.search(r'data-csrf="([^"]+)"', client.get("/ui/").text).group(1)


def _pages(web_app, top_item: str, model_version: str, quarantined: int) -> dict[str, tuple[int, str]]:
    """Each main page as one of the people who work with it: name -> (status, HTML)."""
    gets = {
        "sue": {
            "home": "/ui/",
            "home panels": "/ui/home/panels",
            "queue": "/ui/risk/queue",
            "queue, any status": "/ui/risk/queue?status=any",
            "record": f"/ui/risk/records/{top_item}",
            "rules": "/ui/rules",
            "rule": "/ui/rules/T-CN-DUTY",
            "models": "/ui/models",
            "model curves": f"/ui/models?version={model_version}",
            "sources": "/ui/sources",
            "sql": "/ui/sql",
            "404 page": "/ui/risk/records/no-such-assessment",
            "404 address": "/ui/no-such-page",
        },
        "tom": {"new rule": "/ui/rules-new", "record (officer)": f"/ui/risk/records/{top_item}"},
        "adam": {
            "users": "/ui/admin/users",
            "audit": "/ui/admin/audit",
            "secrets": "/ui/admin/secrets",
            "quarantine": "/ui/quarantine?status=",
            "quarantined record": f"/ui/quarantine/{quarantined}",
            "403 page": "/ui/rules",
            "422 page": "/ui/admin/audit?offset=several",
        },
        "vic": {"home panels (viewer)": "/ui/home/panels"},
        None: {"login": "/ui/login"},
    }
    out: dict[str, tuple[int, str]] = {}
    for person, urls in gets.items():
        with _client(web_app, person) as client:
            for name, url in urls.items():
                response = client.get(url)
                out[name] = (response.status_code, response.text)
            if person == "sue":
                token = _csrf(client)
                sql = "SELECT office_code, count(*) AS n FROM std.declarations GROUP BY 1"
                for name, form in {
                    "sql result": {"sql": sql},
                    "sql refused": {"sql": "SELECT * FROM nowhere"},
                    "sql empty": {"sql": ""},
                }.items():
                    response = client.post("/ui/sql/run", data={**form, "csrf_token": token})
                    out[name] = (response.status_code, response.text)
    return out


def test_chinese_pages_show_no_english_of_the_web_layer(web_app, top_item, model_version, quarantined):
    pages = _pages(web_app, top_item, model_version, quarantined)
    expected = {"404 page": 404, "404 address": 404, "403 page": 403, "422 page": 422}
    for name, (status, _) in pages.items():
        assert status == expected.get(name, 200), name
    # The pages have what the check is about: field labels, metrics, factors, errors.
    record = pages["record"][1]
    assert "報關單號碼" in record and 'id="factors"' in record and "貢獻" in record
    assert "前 5% 精確率" in pages["models"][1] and "報關單" in pages["queue"][1]
    assert "淨重（kg）" in pages["quarantined record"][1]
    leaks = {name: english_on(page) for name, (_, page) in pages.items()}
    assert {name: found for name, found in leaks.items() if found} == {}


def test_an_error_page_says_it_in_the_readers_language(web_app, monkeypatch):
    from sciti.web.views import sources

    with _client(web_app, "sue") as zh, _client(web_app, "sue", "en") as en:
        page = zh.get("/ui/risk/records/no-such-assessment").text
        assert (
            "找不到評估" in page
            and "請從風險佇列開啟紀錄" in page
            and 'translate="no">no-such-assessment<' in page
        )
        page = en.get("/ui/risk/records/no-such-assessment").text
        assert "There is no assessment" in page and "Open a record from the risk queue." in page
        assert "此網址沒有頁面" in zh.get("/ui/no-such-page").text
        assert "There is no page at this address." in en.get("/ui/no-such-page").text
        fragment = zh.get("/ui/risk/records/nope", headers={"HX-Request": "true"})
        assert fragment.status_code == 404 and "找不到評估" in fragment.text

        def broken(*args: Any) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr(sources, "_batches", broken)
        failed = zh.get("/ui/sources")
        assert (
            failed.status_code == 500
            and "伺服器發生未預期的錯誤" in failed.text
            and "boom" not in failed.text
        )
        assert english_on(failed.text) == []
        assert "An unexpected error occurred on the server." in en.get("/ui/sources").text
    with _client(web_app, "vic") as viewer:
        page = viewer.get("/ui/rules").text
        assert "您的角色（檢視者）無權開啟此頁面" in page and "請向系統管理員申請" in page
    with _client(web_app, "sec") as sec:
        page = sec.get("/ui/admin/audit", params={"offset": "several"}).text
        message = page.split('class="state error"', 1)[1].split("</section>", 1)[0]
        assert "以下欄位無效：起始筆數（須為整數）" in message and "several" not in message


def test_another_layers_error_is_said_by_its_code_with_the_servers_words_beside(web_app):
    with _client(web_app, "dee") as zh:
        shown = zh.post(
            "/ui/sql/run", data={"sql": "SELECT * FROM risk.assessments", "csrf_token": _csrf(zh)}
        )
        message = shown.text.split('id="sql-error"', 1)[1].split("</div>", 1)[0]
        assert "資料表不存在，或您的角色無權讀取" in message
        assert re.search(r'lang="en" data-untranslated="server">[^<]*does not exist or your roles', message)
    with _client(web_app, "dee", "en") as en:
        shown = en.post(
            "/ui/sql/run", data={"sql": "SELECT * FROM risk.assessments", "csrf_token": _csrf(en)}
        )
        assert "does not exist or your roles" in shown.text and "data-untranslated" not in shown.text


def test_api_errors_on_a_chinese_page_are_said_by_their_code(web_app):
    """The page's script shows an API refusal by what its code means (the API answers in English)."""
    with _client(web_app, "sue") as zh, _client(web_app, "sue", "en") as en:
        words = re.search(
            r'<script type="application/json" id="code-words">(.*?)</script>', zh.get("/ui/").text
        )
        assert words and json.loads(html.unescape(words.group(1)))["four_eyes"].startswith("須由另一人核准")
        assert 'id="code-words"' not in en.get("/ui/").text


# --- the catalogues -------------------------------------------------------------------------------

TEMPLATE_KEY = re.compile(r"""\bt\(\s*['"]([a-z_]+\.[^'"\s]+)['"]\s*[,)]""")
# t('status.' ~ s), t("models.set_" ~ key), t.each('lane', ...): keys made from values of the code
DYNAMIC = re.compile(r"""\bt\(\s*['"]([a-z_]+\.[a-z_]*)['"]\s*~|\bt\.each\(\s*['"]([a-z_]+)['"]""")


def _dynamic_values() -> dict[str, set[str]]:
    """Per key prefix the templates build keys from, every value the code can give it."""
    from sciti.access.roles import all_roles
    from sciti.acquire.quarantine import STATUSES as QUARANTINE
    from sciti.model.schema import load_kinds
    from sciti.risk.engine.feedback import OUTCOMES
    from sciti.risk.engine.workqueue import ANY_STATUS
    from sciti.risk.engine.workqueue import STATUSES as QUEUE
    from sciti.risk.lanes import LANES
    from sciti.risk.models.registry import STATUSES as MODELS
    from sciti.web.render import NAV
    from sciti.web.views.risk import CURVE_SETS, HEADLINE

    batches = {"running", "committed", "failed"}  # sciti.ops.models.Batch.status
    rule_versions = {"draft", "submitted", "approved", "rejected", "superseded", "replaced"}  # rules.store
    return {
        "status.": {*QUARANTINE, *QUEUE, ANY_STATUS, *MODELS, *batches, *rule_versions},
        "lane.": set(LANES),
        "lane": set(LANES),
        "outcome.": set(OUTCOMES),
        "decision.": {"create", "submit", "approve", "reject", "supersede"},  # rules.store._record
        "state.": {"active", "disabled", "expired", "locked", "must_change_password"},  # access.account_state
        "kind.": set(load_kinds()),
        "role.": set(all_roles()),
        "role": set(all_roles()),
        "metric.": set(HEADLINE),
        "metric_help.": set(HEADLINE),
        "audit_outcome.": {"ok", "denied", "failed", "refused"},  # access.audit outcomes
        "models.make_": {"champion", "challenger"},
        "models.set_": set(CURVE_SETS),
        "home.flag_": {"never_hit", "only_false_positives"},  # risk.engine.report flags
        "nav.": {item.key for item in NAV},
    }


def _python_keys() -> set[str]:
    """Message keys the web layer's Python passes to the pages: t("..."), the worded errors'
    keys, ``error=`` / ``remedy_key=`` arguments, ``why_key`` values and ``error`` variables."""
    found: set[str] = set()

    def strings(node: ast.AST | None) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return strings(node.body) + strings(node.orelse)
        return []

    for path in WEB.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else ""
                )
                if isinstance(func, ast.Call):  # Translator(lang)("key")
                    name = "t"
                if name == "t":
                    found.update(strings(node.args[0]) if node.args else [])
                elif name.startswith("Page"):
                    for arg in node.args[:2]:
                        found.update(strings(arg))
                found.update(
                    s for k in node.keywords if k.arg in ("error", "remedy_key") for s in strings(k.value)
                )
            elif isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == "why_key":
                        found.update(strings(v))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == "error":
                        found.update(strings(node.value))
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        for t, v in zip(target.elts, node.value.elts, strict=False):
                            if isinstance(t, ast.Name) and t.id == "error":
                                found.update(strings(v))
    return found


def _error_codes() -> set[str]:
    import sciti.api.app  # noqa: F401  (imports every package whose errors a page may show)

    codes, todo = {SCITIError.code}, [SCITIError]
    while todo:
        for sub in todo.pop().__subclasses__():
            codes.add(sub.code)
            todo.append(sub)
    return codes


def _page_params() -> set[str]:
    from sciti.web.views import ROUTERS

    names: set[str] = set()

    def walk(dependant: Any) -> None:
        for p in dependant.query_params + dependant.body_params + dependant.path_params:
            names.add(p.name)
        for d in dependant.dependencies:
            walk(d)

    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                walk(route.dependant)
    return names


def test_both_catalogues_have_the_same_keys_and_placeholders():
    en, zh = catalogue("en"), catalogue(ZH)
    assert en.keys() == zh.keys()
    holes = re.compile(r"\{(\w+)")
    assert {k for k in en if set(holes.findall(en[k])) != set(holes.findall(zh[k]))} == set()
    # The same in both languages only where it is a name in either: SQL, ROC AUC.
    assert {k for k, v in zh.items() if v == en[k]} == {"nav.sql", "param.sql", "metric.roc_auc"}


def test_every_key_the_pages_use_is_in_both_catalogues():
    en, zh = catalogue("en"), catalogue(ZH)
    used, prefixes = set(), set()
    for f in (WEB / "templates").glob("*.html"):
        text = f.read_text(encoding="utf-8")
        used |= set(TEMPLATE_KEY.findall(text))
        prefixes |= {a or b for a, b in DYNAMIC.findall(text)}
    values = _dynamic_values()
    assert prefixes - values.keys() == set(), "name the values these key prefixes take in _dynamic_values"
    for prefix in prefixes:
        joint = prefix if prefix.endswith((".", "_")) else prefix + "."
        used |= {joint + v for v in values[prefix]}
    used |= _python_keys()
    used |= {f"code.{c}" for c in _error_codes()}
    used |= {f"param.{p}" for p in _page_params()}
    used |= {f"column.{n}" for n in column_names()}
    assert len(used) > 700
    assert {k for k in used if k not in en or k not in zh} == set()


def test_unknown_keys_and_columns_fall_back_visibly():
    t = Translator(ZH)
    assert t("no.such.key") == "no.such.key"
    assert t.column("n") == "n" and t.label("n") is None  # a SQL alias: shown as its name
    assert t.column("country_of_origin") == "原產地"
    bare = Translator(ZH)
    bare._messages, bare._fallback = {}, {}  # a column no catalogue has yet: the dictionary's English
    assert bare.label("country_of_origin") == "Country of origin" == english_label("country_of_origin")
    assert bare.column("net_mass_kg") == "Net mass (kg)"


def test_a_stored_value_in_a_message_is_escaped_and_marked_as_data():
    t = Translator(ZH)
    shown = t("risk.taken_by", who=keep("<b>sue</b>"))
    assert isinstance(shown, Markup)
    assert shown == '由 <span translate="no">&lt;b&gt;sue&lt;/b&gt;</span> 領取'
    assert t("risk.taken_by", who="sue") == "由 sue 領取"  # plain values: plain text, as before
