"""`sciti risk rule ...`: the CLI acts as a named account; four eyes holds there too."""

from __future__ import annotations

import json

import pytest

from sciti.ops import migrate
from tests.risk.rules.conftest import UNDERVALUE, add_people


@pytest.fixture
def cli(settings, monkeypatch, cli_on):
    monkeypatch.delenv("SCITI_USER", raising=False)
    run = cli_on(settings)
    migrate(settings.resolved_ops_db_url)
    add_people(settings)
    return run


def test_write_submit_approve_diff_and_dry_run(cli, tmp_path) -> None:
    path = tmp_path / "under.yaml"
    path.write_text(UNDERVALUE, encoding="utf-8")
    assert "ok" in cli("risk", "rule", "check", str(path))
    assert "T-UNDER-01 version 1: submitted" in cli(
        "risk", "rule", "add", str(path), "--user", "alice", "--submit"
    )
    refused = cli("risk", "rule", "approve", "T-UNDER-01", "1", "--user", "alice", code=1)
    assert "may not rules.approve" in refused
    assert "version 1: approved" in cli(
        "risk", "rule", "approve", "T-UNDER-01", "1", "--user", "bob", "-m", "ok"
    )

    path.write_text(UNDERVALUE.replace("30%", "25%"), encoding="utf-8")
    assert "T-UNDER-01 version 2: draft" in cli("risk", "rule", "add", str(path), "--user", "carol")
    assert "+when: unit_value_ratio < 25%" in cli("risk", "rule", "diff", "T-UNDER-01")
    cli("risk", "rule", "submit", "T-UNDER-01", "2", "--user", "carol")
    assert "cannot approve" in cli("risk", "rule", "approve", "T-UNDER-01", "2", "--user", "carol", code=1)
    listed = cli("risk", "rule", "list")
    assert "T-UNDER-01" in listed and "v1" in listed
    assert "approve" in cli("risk", "rule", "history", "T-UNDER-01")
    assert "COALESCE(" in cli("risk", "rule", "show", "T-UNDER-01", "--version", "2")

    out = json.loads(cli("risk", "rule", "dry-run", "T-UNDER-01", "--days", "5", "--user", "alice", "--json"))
    assert (out["rule_id"], out["version"], out["days"], out["hits"]) == ("T-UNDER-01", 2, 5, 0)
    assert "--user" in cli("risk", "rule", "dry-run", "T-UNDER-01", code=1)


def test_bad_files_fail_with_the_position(cli, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(UNDERVALUE.replace("< 30%", "<< 30%"), encoding="utf-8")
    out = cli("risk", "rule", "check", str(path), code=1)
    assert "line 1 column" in out and "bad.yaml" in out
    assert "account 'nobody' does not exist" in cli("risk", "rule", "starter", "--user", "nobody", code=1)
    assert "version 1: draft" in cli("risk", "rule", "starter", "--user", "alice")


PASSPORT = """\
id: CLI-PAX-01
title: A known passport
kind: passenger
when: document_number = 'G352540(5)'
lane: red
reason: "Passenger {record_ref}"
"""


def entries(settings, action: str) -> list:
    from sciti.access import list_entries
    from sciti.ops import session_scope

    with session_scope(settings.resolved_ops_db_url) as session:
        found = list_entries(session, action=action)
        session.expunge_all()
    return found


def test_a_dry_run_acts_as_a_named_account_and_is_audited(cli, settings, tmp_path) -> None:
    path = tmp_path / "under.yaml"
    path.write_text(UNDERVALUE, encoding="utf-8")
    assert "give --user NAME" in cli("risk", "rule", "dry-run", str(path), code=1)
    assert "lacks the rules.write permission" in cli(
        "risk", "rule", "dry-run", str(path), "-u", "vic", code=1
    )
    out = json.loads(cli("risk", "rule", "dry-run", str(path), "--user", "alice", "--days", "5", "--json"))
    assert (out["rule_id"], out["version"], out["office"]) == ("T-UNDER-01", None, None)
    assert "more than 3660" in cli(
        "risk", "rule", "dry-run", str(path), "-u", "alice", "--days", "99999", code=1
    )
    cli("risk", "rule", "add", str(path), "--user", "alice")
    cli("risk", "rule", "dry-run", "T-UNDER-01", "--user", "alice")
    ran = entries(settings, "rule.dry_run")
    assert [(e.actor, e.source, e.outcome, e.details.get("adhoc"), e.details["version"]) for e in ran] == [
        ("alice", "cli", "ok", None, 1),
        ("alice", "cli", "ok", True, None),
    ]


def test_personal_fields_on_the_command_line_need_unmask_and_a_purpose(cli, settings, tmp_path) -> None:
    from tests.risk.rules.test_dryrun_access import write_passengers

    write_passengers(settings)
    path = tmp_path / "pax.yaml"
    path.write_text(PASSPORT, encoding="utf-8")
    refused = cli("risk", "rule", "dry-run", str(path), "--user", "alice", code=1)
    assert "document_number" in refused and "masked for you" in refused
    asked = ("--user", "alice", "--unmask", "--purpose", "case 2026-114", "--json")
    assert json.loads(cli("risk", "rule", "dry-run", str(path), *asked))["hits"] == 3
    cli("risk", "rule", "add", str(path), "--user", "alice")
    assert json.loads(cli("risk", "rule", "dry-run", "CLI-PAX-01", *asked))["unmasked"] == ["document_number"]
    ran = entries(settings, "rule.dry_run")
    assert [(e.outcome, e.purpose, e.source) for e in ran] == [
        ("ok", "case 2026-114", "cli"),
        ("ok", "case 2026-114", "cli"),
        ("denied", None, "cli"),
    ]
    assert "G352540" not in str([e.details for e in ran])


def test_refusals_on_the_command_line_are_audited_as_over_the_api(
    cli, settings, tmp_path, monkeypatch
) -> None:
    from tests.risk.rules.test_store import without_unmask

    path = tmp_path / "pax.yaml"
    path.write_text(PASSPORT, encoding="utf-8")
    without_unmask(monkeypatch)
    assert "you may not write it" in cli("risk", "rule", "add", str(path), "--user", "alice", code=1)
    monkeypatch.undo()
    cli("risk", "rule", "add", str(path), "--user", "alice")
    assert "only its author submits it" in cli(
        "risk", "rule", "submit", "CLI-PAX-01", "1", "-u", "carol", code=1
    )
    cli("risk", "rule", "submit", "CLI-PAX-01", "1", "--user", "alice")
    without_unmask(monkeypatch)
    assert "may not approve it" in cli("risk", "rule", "approve", "CLI-PAX-01", "1", "-u", "bob", code=1)
    path.write_text(PASSPORT.replace("G352540(5)", "K1234567"), encoding="utf-8")
    cli("risk", "rule", "add", str(path), "--user", "alice", code=1)
    denied = [
        (e.action, e.actor, e.details["version"], e.details["reason"], e.source)
        for action in ("rule.create", "rule.version", "rule.submit", "rule.approve")
        for e in entries(settings, action)
        if e.outcome == "denied"
    ]
    assert denied == [
        ("rule.create", "alice", None, "protected fields", "cli"),
        ("rule.version", "alice", None, "protected fields", "cli"),
        ("rule.submit", "carol", 1, "not the author", "cli"),
        ("rule.approve", "bob", 1, "protected fields", "cli"),
    ]


@pytest.mark.parametrize("command", ["check", "dry-run", "add"])
def test_a_rule_file_that_is_not_utf8_fails_with_one_line(cli, tmp_path, command) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(UNDERVALUE.replace("Undervalued goods", "Undervalued goods \xff").encode("latin-1"))
    out = cli(
        "risk", "rule", command, str(path), *(() if command == "check" else ("--user", "alice")), code=1
    )
    assert "latin1.yaml: not UTF-8 text: byte 0xff at line 2 column 26" in out, out
    assert "Traceback" not in out and len(out.strip().splitlines()) <= 2  # one line (wrapped at most once)


def test_each_file_added_is_stored_on_its_own(cli, tmp_path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(UNDERVALUE, encoding="utf-8")
    bad.write_text(
        UNDERVALUE.replace("T-UNDER-01", "T-UNDER-02").replace("< 30%", "<< 30%"), encoding="utf-8"
    )
    out = cli("risk", "rule", "add", str(good), str(bad), "--user", "alice", code=1)
    assert "T-UNDER-01 version 1: draft" in out and "bad.yaml" in out
    assert "T-UNDER-01" in cli("risk", "rule", "list")  # what was printed as stored is stored


def test_a_declaration_dry_run_counts_declarations_and_names_the_goods_items(cli, settings, tmp_path) -> None:
    """One unit on the terminal (decision 0104): declarations hit, goods items beside them."""
    from tests.risk.rules.test_dryrun_access import write_declarations, write_rows

    write_declarations(settings, ("A", "B"))
    extra = {"record_id": "d0-i2", "parent_record_id": "d0", "declaration_id": "DEC0",
             "declaration_version": 1, "item_number": 2, "country_of_origin": "CN"}  # fmt: skip
    write_rows(settings, "declaration_item", [extra])
    path = tmp_path / "cn.yaml"
    path.write_text(
        "id: CLI-CN-01\ntitle: t\nkind: declaration\nwhen: country_of_origin = 'CN'\nweight: 10\nreason: r\n",
        encoding="utf-8",
    )
    out = cli("risk", "rule", "dry-run", str(path), "--user", "alice")
    assert "2 declarations in the window; hits 2 declarations (3 goods items);" in out
    assert "hits 3 rows" not in out
    figures = json.loads(cli("risk", "rule", "dry-run", str(path), "--user", "alice", "--json"))
    assert (figures["hits"], figures["hit_rows"], sorted(figures["sample_ids"])) == (2, 3, ["d0", "d1"])


def test_brackets_in_a_title_and_a_comment_are_shown_as_text(cli, tmp_path, monkeypatch) -> None:
    """An analyst writes "[HS 61]" or "[/]" as words: Rich took them for markup, dropping the
    first from `rule list` and failing `rule history` on the second."""
    from sciti.cli.common import console

    monkeypatch.setattr(console, "width", 240)
    path = tmp_path / "under.yaml"
    path.write_text(
        UNDERVALUE.replace("title: Undervalued goods", 'title: "[HS 61] Undervalued goods"'), encoding="utf-8"
    )
    cli("risk", "rule", "add", str(path), "--user", "alice", "--submit")
    cli("risk", "rule", "approve", "T-UNDER-01", "1", "--user", "bob", "-m", "checked [/] with the desk")
    assert "[HS 61]" in cli("risk", "rule", "list")
    assert "checked [/] with the desk" in cli("risk", "rule", "history", "T-UNDER-01")
