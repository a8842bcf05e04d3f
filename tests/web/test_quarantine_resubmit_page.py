"""The quarantine page, filtered, offers to re-submit its open entries as quarantined, a part per
click, beside the bulk discard (decision 0117): the selection it sends, the session's CSRF token,
both languages."""

from __future__ import annotations

import html
import re

from sciti.acquire import Runner, load_connector
from sciti.acquire.quarantine_bulk import Selection, discard_selection
from sciti.acquire.quarantine_resubmit import CALL_DEFAULT

UNIT = "late-mass.csv"


def negative_mass(web_settings, shared_data, n: int) -> str:
    """Real KCS rows with fresh ids whose net mass is negative: one batch, ``n`` open entries."""
    lines = (shared_data / "kcs" / "train.csv").read_text("utf-8").splitlines()
    bad = []
    for i, line in enumerate(lines[1 : 1 + n]):
        cells = line.split(",")
        cells[0], cells[18] = f"9917{i:04d}", "-1"
        bad.append(",".join(cells))
    data = ("\n".join([lines[0], *bad]) + "\n").encode()
    result = Runner(web_settings).ingest_bytes(load_connector(web_settings, "kcs"), data, UNIT)
    assert result.quarantined == n, result
    return result.batch_id


def _form(page: str) -> str:
    form = re.search(r'<form class="card" id="bulk-resubmit-form".*?</form>', page, re.S)
    assert form, page
    return form.group(0)


def test_a_filtered_page_re_submits_its_open_entries(web_settings, as_user, shared_data) -> None:
    batch = negative_mass(web_settings, shared_data, 3)
    dee = as_user("dee")
    dee.cookies.set("sciti_lang", "en")
    assert 'id="bulk-resubmit-form"' not in dee.get("/ui/quarantine").text  # no filter: no bulk action

    page = dee.get(f"/ui/quarantine?status=open&batch_id={batch}").text
    form = _form(page)
    assert 'data-api="/api/v1/quarantine/resubmit"' in form
    assert "Re-submit up to 3 selected as quarantined" in form
    assert f"One request takes up to {CALL_DEFAULT}" in form
    assert "Re-submit up to 3 records as they were quarantined?" in html.unescape(form)
    body = {n: html.unescape(v) for n, v in re.findall(r'<input [^>]*name="(\w+)" value="([^"]*)"', form)}
    assert body == {"batch_id": batch}  # what the page's script sends: the filter, nothing else

    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    assert dee.post("/api/v1/quarantine/resubmit", json=body).status_code == 403  # no CSRF token
    tom = as_user("tom")  # a targeting officer: no quarantine.resubmit, no form
    assert 'id="bulk-resubmit-form"' not in tom.get(f"/ui/quarantine?batch_id={batch}").text
    done = dee.post("/api/v1/quarantine/resubmit", json=body, headers={"X-CSRF-Token": token})
    assert done.status_code == 200, done.text
    # the mass is still negative: each entry ran again and was quarantined again, as a new entry
    answer = done.json()
    assert (answer["selected"], answer["resubmitted"], answer["quarantined"]) == (3, 3, 3)
    after = dee.get(f"/ui/quarantine?status=open&batch_id={batch}").text
    assert 'id="bulk-resubmit-form"' not in after and "Nothing in quarantine matches." in after

    # leave the shared instance's open count as it was
    again = dee.get("/api/v1/quarantine?status=open&limit=500").json()["items"]
    new = tuple(e["id"] for e in again if f"!{UNIT}#resubmit-" in e["locator"])
    assert len(new) == 3
    discard_selection(web_settings, Selection(ids=new), "test rows", "dee")


def test_the_resubmit_form_speaks_chinese(web_settings, as_user, shared_data) -> None:
    from tests.web.test_i18n import english_words

    batch = negative_mass(web_settings, shared_data, 2)
    dee = as_user("dee")
    dee.cookies.set("sciti_lang", "zh-Hant")
    try:
        page = dee.get(f"/ui/quarantine?status=open&batch_id={batch}").text
    finally:
        dee.cookies.set("sciti_lang", "en")
    form = _form(page)
    assert "將選取的至多 2 筆依隔離時原樣重新提交" in form
    shown = (
        re.sub(r"<[^>]+>", " ", form)
        + " "
        + " ".join(re.findall(r'data-(?:confirm|done-msg)="([^"]+)"', form))
    )
    assert english_words(html.unescape(shown)) == []
    discard_selection(web_settings, Selection(batch_id=batch), "test rows", "dee")
