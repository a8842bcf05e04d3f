"""The sources page and the home panel show a batch's rows already stored (decision 0105), so its
counts add up on the page: received = stored + quarantined + already stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from sciti.ops import Batch, session_scope
from tests.web.conftest import login


@pytest.fixture
def client(settings):
    from sciti.access import create_user
    from sciti.api.app import create_app
    from sciti.ops import migrate

    migrate(settings.resolved_ops_db_url)
    now = datetime.now(UTC)
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "dee", ["data_engineer"], password="Lantern-Orbit-Quarry-42")
        s.add(
            Batch(
                id="again", connector="kcs", source="kcs", unit="train-again.csv", fingerprint="f",
                status="committed", received=37386, stored=3, quarantined=2, already_stored=37381,
                tables={}, started_at=now, finished_at=now,
            )
        )  # fmt: skip
        s.add(
            Batch(
                id="updated", connector="cases", source="cases", unit="window-2", fingerprint="g",
                status="committed", received=10, stored=6, quarantined=1, already_stored=3, replaced=4,
                tables={}, started_at=now, finished_at=now,
            )
        )  # fmt: skip
    with TestClient(create_app(settings)) as c:
        login(c, "dee", "Lantern-Orbit-Quarry-42")
        yield c


def _cells(html: str) -> list[str]:
    found = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", html, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in found]


@pytest.mark.parametrize(
    ("lang", "heading", "help_words"),
    [("en", "Already stored", "Sent before with the same values"), ("zh-Hant", "先前已儲存", "相同內容")],
)
def test_the_sources_page_shows_rows_already_stored(client, lang, heading, help_words) -> None:
    client.cookies.set("sciti_lang", lang)
    page = client.get("/ui/sources")
    assert page.status_code == 200
    cells = _cells(page.text)
    assert cells.count(heading) == 2  # the sources' totals and the batches
    assert "37381" in cells and help_words in page.text
    assert 'value="37386"' in page.text and 'value="10"' in page.text  # the batches' progress is full
    assert "counts do not reconcile" not in page.text and "筆數無法勾稽" not in page.text


def test_the_home_panel_shows_rows_already_stored(client) -> None:
    client.cookies.set("sciti_lang", "en")
    panels = client.get("/ui/home/panels").text
    assert re.search(r"<dt[^>]*>Already stored</dt><dd>37384</dd>", panels), panels


@pytest.mark.parametrize(("lang", "label"), [("en", "Replaced"), ("zh-Hant", "已取代")])
def test_the_home_panel_shows_rows_replaced_as_part_of_stored(client, lang, label) -> None:
    # Decision 0112: replaced is part of stored, so the panel still reconciles without it.
    client.cookies.set("sciti_lang", lang)
    panels = client.get("/ui/home/panels").text
    shown = dict(re.findall(r"<dt[^>]*>([^<]+)</dt><dd[^>]*>(\d+)</dd>", panels))
    assert shown[label] == "4", panels
    received, stored, quarantined = (int(shown[k]) for k in _FIGURES[lang][:3])
    assert received == 37396 and received == stored + quarantined + int(shown[_FIGURES[lang][3]])
    assert 'title="Of the stored' in panels or "已儲存者中" in panels


_FIGURES = {
    "en": ("Received", "Stored", "Quarantined", "Already stored"),
    "zh-Hant": ("接收", "儲存", "隔離", "先前已儲存"),
}
