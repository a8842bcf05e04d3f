"""A dry-run is a read on the caller's behalf (decision 0080): masked fields cannot be looked up,
an office-bound caller counts only their office's records, and every attempt is audited.

The data are real lake tables: passengers written into ``std.passengers`` here (one traveller,
masked surname HO, three trips on passport G352540(5)), and the KCS declarations with their
offices and inspection results through connectors/kcs.
"""

from __future__ import annotations

import collections
import json
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from sciti.access import DataPolicy, Principal, list_entries, permissions_of
from sciti.lake import open_lake, query
from sciti.model import get_kind
from sciti.ops import migrate, session_scope
from sciti.risk.rules import (
    DryRunAccess,
    ProtectedFieldsRefused,
    authorize_dry_run,
    compile_python,
    dry_run,
    dry_run_as,
    parse_rule,
    protected_fields,
    shown_dry_run,
)
from sciti.risk.rules.protected import missing_permissions
from sciti.web.dryrun_words import note_said
from sciti.web.i18n import Translator
from tests.risk.rules.test_dryrun import RULE, kcs_lake, subject_rows  # noqa: F401 (fixture)
from tests.web.test_i18n import english_on

PASSPORT = "G352540(5)"
KEPT = '<span translate="no">{}</span>'  # a value a page shows as written
TRAVELLERS = [
    # record_id, surname, document number, departure day
    ("p0", "HO", PASSPORT, date(2026, 1, 2)),
    ("p1", "HO", PASSPORT, date(2026, 1, 5)),
    ("p2", "HO", PASSPORT, date(2026, 1, 9)),
    ("p3", "CHAN", "K1234567", date(2026, 1, 9)),
    ("p4", "HOANG", "M7654321", date(2026, 1, 10)),
]


def passenger_rule(when: str) -> dict:
    return {
        "id": "PAX-LOOKUP",
        "title": "t",
        "kind": "passenger",
        "when": when,
        "weight": 10,
        "reason": "{record_ref}",
    }


def person(*roles: str, office: str | None = None, drop: tuple[str, ...] = ()) -> Principal:
    """A caller with the permissions of ``roles`` (less ``drop``: a role without unmask)."""
    return Principal(
        user_id=1,
        username=f"p-{'-'.join(roles)}{'-' + office if office else ''}",
        display_name="",
        roles=roles,
        office_code=office,
        permissions=permissions_of(roles) - set(drop),
    )


OFFICER = person("targeting_officer")  # holds personal.unmask, but must ask for it with a purpose
NO_UNMASK = person("targeting_officer", drop=("personal.unmask",))


def write_rows(settings, kind: str, rows: list[dict]) -> None:
    """Append ``rows`` (other fields empty) to the kind's lake table, as a connector would."""
    k = get_kind(kind)
    lake = open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)
    lake.ensure_zones()
    lake.ensure_table(k.ident, k.arrow_schema())
    base = {f.name: None for f in k.arrow_schema()}
    base.update(source="t", batch_id="b", ingested_at=datetime(2026, 1, 11, tzinfo=UTC))
    lake.append(k.ident, pa.Table.from_pylist([{**base, **r} for r in rows], schema=k.arrow_schema()))


def write_passengers(settings) -> None:
    rows = [
        {
            "record_id": record_id,
            "record_ref": f"R-{record_id}",
            "surname": surname,
            "given_names": "KA MING",
            "document_number": number,
            "departure_date": day,
            "nationality": "HK",
        }
        for record_id, surname, number, day in TRAVELLERS
    ]
    write_rows(settings, "passenger", rows)


def write_declarations(settings, offices: tuple[str, ...] = ("A", "B", "B")) -> None:
    """One declaration per office given, each with one item of Chinese origin."""
    heads, items = [], []
    for n, office in enumerate(offices):
        heads.append(
            {
                "record_id": f"d{n}",
                "declaration_id": f"DEC{n}",
                "version": 1,
                "office_code": office,
                "acceptance_date": date(2026, 1, 1 + n),
            }
        )
        items.append(
            {
                "record_id": f"d{n}-i1",
                "parent_record_id": f"d{n}",
                "declaration_id": f"DEC{n}",
                "declaration_version": 1,
                "item_number": 1,
                "country_of_origin": "CN",
            }
        )
    write_rows(settings, "declaration", heads)
    write_rows(settings, "declaration_item", items)


@pytest.fixture
def passengers(settings):
    migrate(settings.resolved_ops_db_url)
    write_passengers(settings)
    return settings


def rule_entries(settings) -> list:
    with session_scope(settings.resolved_ops_db_url) as session:
        return list_entries(session, action="rule.dry_run")


@pytest.mark.parametrize(
    ("when", "fields"),
    [
        (f"document_number = '{PASSPORT}'", ["document_number"]),
        ("record_id = 'p0' and surname starts with 'H'", ["surname"]),
        ("date_of_birth < date '1990-01-01' or phone is missing", ["date_of_birth", "phone"]),
        ("nationality = 'HK' and not (given_names contains 'MING')", ["given_names"]),
    ],
)
@pytest.mark.parametrize("caller", [OFFICER, NO_UNMASK], ids=["officer", "no-unmask-role"])
def test_a_condition_on_a_masked_field_is_refused_and_audited(passengers, when, fields, caller) -> None:
    rule = parse_rule(passenger_rule(when))
    assert protected_fields(rule) == {"personal": fields}
    with pytest.raises(ProtectedFieldsRefused) as refused:
        dry_run_as(passengers, caller, rule, 400)
    assert refused.value.http_status == 403 and refused.value.details["fields"] == fields
    assert refused.value.details["permissions"] == ["personal.unmask"]
    assert ('"unmask": true' in refused.value.remedy) == (caller is OFFICER)  # what would work, if any
    (entry,) = rule_entries(passengers)
    assert (entry.actor, entry.outcome, entry.target) == (caller.username, "denied", "rule:PAX-LOOKUP")
    assert entry.details["protected_fields"] == {"personal": fields}
    assert (entry.details["kind"], entry.details["days"], entry.details["adhoc"]) == ("passenger", 400, True)


def test_the_character_by_character_attack_learns_nothing(passengers) -> None:
    """The reported attack: a known record, then 'H', 'HO', ... of its masked surname."""
    answers = []
    for prefix in ("H", "HO", "HOA", "C"):
        rule = parse_rule(passenger_rule(f"record_id = 'p0' and surname starts with '{prefix}'"))
        with pytest.raises(ProtectedFieldsRefused) as refused:
            dry_run_as(passengers, OFFICER, rule, 400)
        answers.append(str(refused.value))
    assert len(set(answers)) == 1  # the same refusal whatever the prefix: no bit of the name leaks
    assert all(e.outcome == "denied" for e in rule_entries(passengers))


@pytest.mark.parametrize(
    ("caller", "unmask", "purpose", "error"),
    [
        (OFFICER, True, None, "purpose"),  # unmask needs a stated purpose, as on the SQL path
        (OFFICER, True, "  ", "purpose"),
        (NO_UNMASK, True, "case 2026-114", "personal.unmask"),  # and the permission
    ],
)
def test_unmask_needs_the_permission_and_a_purpose(passengers, caller, unmask, purpose, error) -> None:
    rule = parse_rule(passenger_rule(f"document_number = '{PASSPORT}'"))
    with pytest.raises(Exception, match=error) as refused:
        dry_run_as(passengers, caller, rule, 400, unmask=unmask, purpose=purpose)
    assert refused.value.http_status == 403
    assert [e.outcome for e in rule_entries(passengers)] == ["denied"]


def test_with_unmask_and_a_purpose_the_dry_run_works_and_is_audited_without_the_value(passengers) -> None:
    rule = parse_rule(passenger_rule(f"document_number = '{PASSPORT}'"))
    result = dry_run_as(passengers, OFFICER, rule, 400, unmask=True, purpose="case 2026-114", source="cli")
    assert (result.hits, result.hit_subjects, sorted(result.sample_ids)) == (3, 3, ["p0", "p1", "p2"])
    assert result.unmasked == ["document_number"] and result.office is None

    (entry,) = rule_entries(passengers)
    assert (entry.actor, entry.outcome, entry.purpose, entry.source) == (
        OFFICER.username,
        "ok",
        "case 2026-114",
        "cli",
    )
    assert entry.details["hits"] == 3 and entry.details["records"] == 5 and entry.details["unmask"] is True
    assert entry.details["personal_unmasked"] == ["document_number"]
    assert PASSPORT not in json.dumps(entry.details) and "G352540" not in entry.target


def test_a_condition_on_fields_anyone_may_read_is_audited_too(passengers) -> None:
    rule = parse_rule(passenger_rule("nationality = 'HK'"))
    result = dry_run_as(passengers, NO_UNMASK, rule, 30)
    assert result.hits == 5 and result.unmasked == []
    (entry,) = rule_entries(passengers)
    assert (entry.outcome, entry.details["hits"], entry.details["days"]) == ("ok", 5, 30)
    assert "protected_fields" not in entry.details and "unmask" not in entry.details


def test_even_past_the_check_the_engine_reads_masked_values(passengers) -> None:
    """Defence in depth: the dry-run reads through the caller's views, so a masked field compared
    with a clear value matches nothing."""
    rule = parse_rule(passenger_rule(f"document_number = '{PASSPORT}' or surname starts with 'HO'"))
    masked = DryRunAccess(OFFICER, DataPolicy(OFFICER), protected_fields(rule))
    result = dry_run(passengers, rule, 400, access=masked)
    assert result.hits == 0  # pseudonyms never equal the number; initials 'H*' never start with 'HO'


def test_without_a_caller_a_rule_on_personal_fields_is_refused(passengers) -> None:
    with pytest.raises(ProtectedFieldsRefused, match="named account"):
        dry_run(passengers, parse_rule(passenger_rule(f"document_number = '{PASSPORT}'")), 400)


def test_a_caller_who_may_not_read_the_kind_gets_no_figures(passengers) -> None:
    """Need-to-know: without sql.query the passenger table does not exist for the caller; the
    dry-run (counts, days, sample ids) is refused like a query of it."""
    blind = person("targeting_officer", drop=("sql.query",))
    rule = parse_rule(passenger_rule("nationality = 'HK'"))
    with pytest.raises(Exception, match="std.passengers") as refused:
        authorize_dry_run(blind, rule)
    assert refused.value.code == "table_not_readable"


@pytest.mark.parametrize(
    ("permissions", "fields", "missing"),
    [
        (set(), {"personal": ["surname"]}, {"personal.unmask": ["surname"]}),
        (set(), {"restricted": ["concealment_method"]}, {"intel.read": ["concealment_method"]}),
        (
            {"intel.read"},
            {"restricted": ["concealment_method"], "personal": ["phone"]},
            {"personal.unmask": ["phone"]},
        ),
        ({"intel.read", "personal.unmask"}, {"restricted": ["x"], "personal": ["y"]}, {}),
    ],
)
def test_the_permission_each_class_needs_comes_from_the_policy(permissions, fields, missing) -> None:
    assert missing_permissions(frozenset(permissions), fields) == missing


# -- office scope, over the KCS declarations (offices 40, 20, 30, ...) --------------------------------


def office_hits(settings, rule, office: str, days: int = 400):
    rows = subject_rows(settings)
    hi = max(r["acceptance_date"] for r in rows)
    lo = date.fromordinal(hi.toordinal() - days + 1)
    matches = compile_python(rule)
    return [r for r in rows if lo <= r["acceptance_date"] <= hi and r["office_code"] == office and matches(r)]


@pytest.mark.parametrize(
    ("when", "path"),
    [
        (RULE["when"], "lake"),
        ("unit_value_ratio < 30% and hs_chapter != '27'", "features"),
    ],
)
def test_an_office_bound_caller_counts_only_their_offices_records(kcs_lake, when, path) -> None:  # noqa: F811
    rule = parse_rule({**RULE, "when": when})
    everyone = dry_run_as(kcs_lake, person("analyst"), rule, 400)
    office = dry_run_as(kcs_lake, person("analyst", office="40"), rule, 400)
    assert (everyone.path, office.path, everyone.office, office.office) == (path, path, None, "40")

    lake = open_lake(kcs_lake.resolved_catalog_uri, kcs_lake.resolved_warehouse)
    sql = "SELECT record_id, office_code FROM std.declarations"  # samples: declarations' record ids
    offices = {r["record_id"]: r["office_code"] for r in query(lake, sql).to_pylist()}
    assert 0 < office.hit_subjects < everyone.hit_subjects
    assert {offices[i] for i in office.sample_ids} == {"40"}  # no other office's record ids
    assert {offices[i] for i in everyone.sample_ids} != {"40"}
    assert office.records < everyone.records
    if path == "lake":  # an independent count of office 40's hits, frauds and records
        hits = office_hits(kcs_lake, rule, "40")
        assert office.hit_subjects == len(hits)
        assert office.known_frauds == sum(1 for r in hits if r["fraud"])
        per_day = collections.Counter(r["acceptance_date"].isoformat() for r in hits)
        assert {d["day"]: d["hits"] for d in office.hits_per_day} == dict(per_day)

    entries = [e for e in rule_entries(kcs_lake) if e.details.get("path") == path]
    assert [e.details.get("office") for e in entries[:2]] == ["40", None]  # newest first


def test_a_scope_of_offices_the_caller_cannot_see_is_blamed_on_their_binding_not_the_scope(
    kcs_lake,  # noqa: F811
) -> None:
    rule = parse_rule({**RULE, "scope": {"offices": ["20"]}})
    everyone = dry_run_as(kcs_lake, person("analyst"), rule, 400)
    bound = dry_run_as(kcs_lake, person("analyst", office="40"), rule, 400)
    assert everyone.in_scope > 0 and everyone.notes == []
    assert (bound.records > 0, bound.in_scope, bound.hits) == (True, 0, 0)
    (note,) = bound.notes
    assert note.startswith("your account sees office 40 only; the rule's scope names 20, which your account ")
    assert "check the scope's values" not in note
    # ... and its code, from which a Chinese page says it (decision 0118)
    params = {"office": "40", "offices": ["20"], "records": bound.records, "kind": "declaration"}
    assert bound.note_codes == [{"code": "offices_hidden", "params": params}]
    said = str(note_said(Translator("zh-Hant"), bound.note_codes[0]))
    assert f"您的帳號只能看見關別 {KEPT.format('40')}；規則的適用範圍指定 {KEPT.format('20')}" in said
    assert f"您可看見的 {bound.records:,} 筆報關單中" in said and english_on(said) == []
    # Their own office in the scope: a scope that keeps nothing is the scope's, as before.
    own = dry_run_as(
        kcs_lake,
        person("analyst", office="40"),
        parse_rule({**RULE, "scope": {"offices": ["40", "ZZ"]}}),
        400,
    )
    assert own.notes == [] and own.in_scope > 0
    none = dry_run_as(
        kcs_lake, person("analyst", office="40"), parse_rule({**RULE, "scope": {"procedures": ["ZZ"]}}), 400
    )
    assert len(none.notes) == 1 and "check the scope's values against the data" in none.notes[0]


def test_kept_figures_are_shown_only_to_readers_who_could_have_made_them() -> None:
    result = {"hits": 3, "office": "40", "sample_ids": ["x"]}
    personal = {"personal": ["document_number"]}
    assert shown_dry_run(result, {}, person("supervisor"))[1] is None
    assert shown_dry_run(result, {}, person("supervisor", office="40"))[1] is None
    assert shown_dry_run(result, {}, person("supervisor", office="20")) == (
        {},
        "made over another office, not yours",
    )
    every = {"hits": 3, "office": None}
    assert "every office" in (shown_dry_run(every, {}, person("supervisor", office="40"))[1] or "")
    assert shown_dry_run({"hits": 3}, {}, person("supervisor", office="40"))[0] == {}  # kept before 0080
    assert shown_dry_run(result, personal, person("supervisor"))[1] is None
    withheld = shown_dry_run(result, personal, person("supervisor", drop=("personal.unmask",)))
    assert withheld[0] == {} and "personal.unmask" in (withheld[1] or "")
