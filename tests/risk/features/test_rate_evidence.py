"""Every rate an explanation quotes says how much evidence it rests on (decision 0115): its group's
past inspections and frauds from the reference, the same in batch and in real time; a group never
inspected keeps its "assumed" words; a rate the reference did not make claims no counts."""

from __future__ import annotations

from datetime import date

import pytest

from sciti.risk.evaluate import read_kcs
from sciti.risk.features import build_reference_from, columns, compute_batch, compute_one
from sciti.risk.features.catalog import SUBJECT_KINDS, config
from sciti.risk.features.evidence import evidence_of, rate_sources
from sciti.risk.models.scoring import describe


@pytest.fixture(scope="module")
def kcs(shared_data):
    train = read_kcs(shared_data / "kcs" / "train.csv")
    valid = read_kcs(shared_data / "kcs" / "valid.csv")
    return build_reference_from(train, as_of=date(2020, 12, 31), snapshot_id="kcs", known={}), train, valid


def said(ref, kind: str, name: str, row: dict) -> str:
    """The factor's sentence as ScoringModel.explain makes it with a reference."""
    feats = compute_one(kind, row, ref)
    found = evidence_of(ref, kind, name, feats)
    return describe(kind, name, feats, 0.1, fallback=ref.fallbacks[name], evidence=found)


@pytest.mark.parametrize(
    ("kind", "name", "values", "words"),
    [
        # many inspections: the counts, no pull worth saying
        ("declaration", "origin_risk", {"country_of_origin": "CN"},
         "Goods of origin CN: estimated fraud rate 22% (4,248 frauds in 19,092 inspected goods items)"),
        ("declaration", "hs_critical_rate", {"hs_code": "3926909000"},
         "Goods under HS 392690: estimated critical-fraud rate 0.3% (6 critical frauds in 1,773 inspected "
         "goods items)"),
        ("consignment", "hs_risk", {"hs_code": "630790"},
         "Goods under HS 630790: estimated fraud rate 32% (116 frauds in 355 inspected goods items)"),
        # few: the counts, and that the rate leans on the overall one
        ("declaration", "exporter_hit_rate", {"exporter_id": "020TIUK"},
         "Goods from exporter 020TIUK: estimated fraud rate 31% (4 frauds in 7 past inspections, pulled "
         "toward the overall 22% as inspections are few)"),
        ("declaration", "trader_hit_rate", {"importer_id": "01G9GI0"},
         "Importer 01G9GI0: estimated fraud rate 25% (1 fraud in 1 past inspection, pulled toward the "
         "overall 22% as inspections are few)"),
        # none: the words of a group never inspected, as they were
        ("declaration", "trader_hit_rate", {"importer_id": "NEVER-SEEN-01"},
         "Importer NEVER-SEEN-01 has no past inspections: the overall fraud rate of 22% is assumed"),
        ("consignment", "origin_risk", {"consignor_country": "XQ"},
         "Goods from XQ have no past inspections: the overall fraud rate of 22% is assumed"),
    ],
)  # fmt: skip
def test_a_rate_says_its_inspections_and_frauds(kcs, kind: str, name: str, values: dict, words: str) -> None:
    ref, _, valid = kcs
    row = {**valid.slice(0, 1).to_pylist()[0], **values} if kind == "declaration" else values
    assert said(ref, kind, name, row) == f"{words} (contributes +0.10)"


def test_every_smoothed_rate_has_a_place_for_its_counts() -> None:
    for kind in SUBJECT_KINDS:
        for info in columns(kind).values():
            if info.derived and info.description.startswith("Smoothed share"):
                assert info.name in rate_sources(kind), (kind, info.name)
                assert info.explain and "({evidence})" in info.explain, (kind, info.name)
                assert info.explain_unseen and "{evidence}" not in info.explain_unseen


def test_the_counts_reconcile_with_every_rate_of_the_reference(kcs) -> None:
    """Each group's rate is its counts smoothed: (frauds + m x overall) / (inspections + m)."""
    ref, _, _ = kcs
    m = float(config()["smoothing"])
    checked = 0
    for name, src in rate_sources("declaration").items():
        for key, h in ref.lookups["history"][src.group].items():
            row = dict(zip(src.keys, key.split("\x1f"), strict=True)) | {name: h[src.stat]}
            ev = evidence_of(ref, "declaration", name, row)
            assert ev is not None and ev.inspections == h["inspections"], (name, key)
            assert ev.frauds is not None and 0 <= ev.frauds <= ev.inspections, (name, key)
            assert (ev.frauds + m * ev.overall) / (ev.inspections + m) == pytest.approx(h[src.stat], rel=1e-9)
            if src.stat == "hit_rate":
                assert ev.frauds == h["frauds"]
            checked += 1
    assert checked > 100_000


def test_batch_and_real_time_say_the_same_counts(kcs) -> None:
    ref, _, valid = kcs
    sample = valid.slice(0, 1500)
    batch = compute_batch("declaration", sample, ref).to_pylist()
    seen = {"pulled": 0, "many": 0, "none": 0}
    for b, record in zip(batch, sample.to_pylist(), strict=True):
        single = compute_one("declaration", record, ref)
        for name in rate_sources("declaration"):
            found = evidence_of(ref, "declaration", name, b)
            assert found is not None and found == evidence_of(ref, "declaration", name, single), name
            texts = [
                describe("declaration", name, r, 0.1, fallback=ref.fallbacks[name], evidence=found)
                for r in (b, single)
            ]
            assert texts[0] == texts[1]
            kind = "none" if not found.inspections else "pulled" if found.pulled else "many"
            seen[kind] += 1
    assert min(seen.values()) > 100, seen  # every form of the words was compared


def test_a_rate_the_reference_did_not_make_claims_no_counts(kcs) -> None:
    """Point-in-time rates (training, evaluation) differ from the reference's: said as before."""
    ref, train, _ = kcs
    pit = compute_batch("declaration", train.slice(8000, 200), ref, point_in_time=True).to_pylist()
    origins = ref.lookups["history"]["origin"]
    row = next(r for r in pit if r["origin_risk"] != origins[r["country_of_origin"]]["hit_rate"])
    assert evidence_of(ref, "declaration", "origin_risk", row) is None
    text = describe("declaration", "origin_risk", row, 0.1, fallback=ref.prior)
    assert "(from the share of past inspections that found fraud, pulled toward the overall rate when" in text
    critical = describe("declaration", "hs_critical_rate", {"hs_critical_rate": 0.5, "hs6": "392690"}, 0.1)
    assert "(from the share of past inspections that found critical fraud," in critical
    assert evidence_of(ref, "declaration", "hs6", row) is None  # no rate, no counts
