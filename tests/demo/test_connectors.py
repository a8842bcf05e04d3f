"""End to end: every feed of the tiny world goes through its own connector with nothing
quarantined, the lake holds what the generator counted, and corrupted copies are quarantined."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from sciti.acquire import Runner, list_quarantine, load_connector
from sciti.demo import GenerationReport
from sciti.demo.errors import DemoError
from sciti.demo.load import FEEDS, TRUTH, LoadReport, load_world, plan_load
from sciti.lake import query
from sciti.model import make_record_id
from sciti.ops import session_scope
from sciti.settings import Settings
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("demo_instance"))


@pytest.fixture(scope="module")
def loaded(tiny_world: GenerationReport, instance: Settings) -> LoadReport:
    return load_world(instance, tiny_world.out)


def count(settings: Settings, sql: str) -> int:
    return int(query(Runner(settings).lake, sql).column(0)[0].as_py() or 0)


# ---- every emitted file passes its own connector --------------------------------------------


@pytest.mark.parametrize("connector", [f.connector for f in FEEDS])
def test_every_emitted_file_passes_its_connector(loaded, connector):
    (feed,) = [f for f in loaded.feeds if f.feed.connector == connector]
    assert feed.files >= 1 and feed.results
    for r in feed.results:
        assert r.status == "committed", (r.unit, r.error)
        assert r.quarantined == 0, (r.unit, r.quarantined)
        assert r.received == r.stored > 0, r


def test_every_emitted_file_has_a_connector(tiny_world, instance):
    emitted = {
        p
        for p in tiny_world.out.rglob("*")
        if p.is_file() and p.relative_to(tiny_world.out).parts[0] not in (TRUTH, "reference")
    }
    taken = [p for _, files in plan_load(instance, tiny_world.out) for p in files]
    assert len(taken) == len(set(taken)), "a file is read by two connectors"
    assert emitted == set(taken)


def test_nothing_was_quarantined_and_ground_truth_never_read(loaded, instance):
    assert list_quarantine(instance) == []
    assert count(instance, "SELECT count(*) FROM raw.demo_clearance") == 3
    with session_scope(instance.resolved_ops_db_url) as s:
        from sciti.ops import Batch

        units = [b.unit for b in s.query(Batch)]
    assert units and not [u for u in units if TRUTH in u]


def test_ground_truth_folder_is_refused(tiny_world, instance):
    with pytest.raises(DemoError, match="ground truth"):
        load_world(instance, tiny_world.out / TRUTH)


# ---- counts in the lake equal the generator's counts ----------------------------------------


def consignments_in(world: Path) -> int:
    lines = (world / "road/road_cargo.jsonl").read_text(encoding="utf-8").splitlines()
    return sum(len(json.loads(line)["consignments"]) for line in lines)


ELOCK = "SELECT {col} FROM std.elock_fixes UNION ALL SELECT {col} FROM std.elock_events"
COUNTS: list[tuple[str, str, Callable[[GenerationReport], int]]] = [
    ("std.declarations", "demo-clearance", lambda w: w.counts["declarations/csv/declarations.csv"]),
    ("std.declarations", "wco-dec", lambda w: w.counts["declarations.xml"]),
    ("std.declaration_items", "demo-clearance", lambda w: w.counts["declarations/csv/declaration_items.csv"]),
    (
        "std.declaration_parties",
        "demo-clearance",
        lambda w: w.counts["declarations/csv/declaration_parties.csv"],
    ),
    ("std.manifests", "edifact-cuscar", lambda w: w.counts["manifests.cuscar_messages"]),
    ("std.consignments", "edifact-cuscar", lambda w: w.counts["manifests.consignments"]),
    ("std.road_cargo_info", "demo-road-cargo", lambda w: w.counts["road/road_cargo.jsonl"]),
    ("std.manifests", "demo-road-cargo", lambda w: w.counts["road/road_cargo.jsonl"]),
    ("std.consignments", "demo-road-cargo", lambda w: consignments_in(w.out)),
    ("std.conveyance_crossings", "demo-crossings", lambda w: w.counts["road/crossings.csv"]),
    (f"({ELOCK.format(col='source')})", "demo-elock", lambda w: w.counts["elock/messages.jsonl"]),
    ("std.passengers", "demo-api", lambda w: w.counts["passengers/api_records.jsonl"]),
    ("std.currency_declarations", "demo-cbni", lambda w: w.counts["currency/cbni.csv"]),
    ("std.inspection_results", "demo-enforcement", lambda w: w.counts["inspections/inspections.csv"]),
    ("std.seizures", "demo-enforcement", lambda w: w.counts["seizures/seizures.csv"]),
    ("std.cases", "demo-enforcement", lambda w: w.counts["cases/cases.csv"]),
    ("std.intelligence_reports", "demo-intel", lambda w: w.counts["intel/reports.jsonl"]),
    ("std.watchlist_entries", "demo-intel", lambda w: w.counts["intel/watchlist.csv"]),
    (
        "std.security_events",
        "demo-seclogs",
        lambda w: sum(w.counts[f"seclogs/{n}.jsonl"] for n in ("auth", "app", "firewall")),
    ),
]


@pytest.mark.parametrize(("table", "source", "expected"), COUNTS, ids=[f"{t[:30]}-{s}" for t, s, _ in COUNTS])
def test_lake_counts_equal_generator_counts(loaded, instance, tiny_world, table, source, expected):
    assert count(instance, f"SELECT count(*) FROM {table} WHERE source = '{source}'") == expected(tiny_world)


def test_manifests_name_the_office_their_consignments_are_handled_at(loaded, instance):
    """Sea cargo reports are lodged at KTCT and air cargo reports at HKIA, as the call's
    declarations are; road cargo reports at the truck's control point. An officer bound to an
    office reads that office's consignments: they follow their manifest (decision 0108)."""
    from sciti.access import open_query
    from tests.access.test_policy import principal

    lake = Runner(instance).lake
    sql = "SELECT source, mode_of_transport, customs_office FROM std.manifests GROUP BY ALL"
    rows = query(lake, sql).to_pylist()
    assert rows and all(r["customs_office"] for r in rows), [r for r in rows if not r["customs_office"]]
    cuscar = {(r["mode_of_transport"], r["customs_office"]) for r in rows if r["source"] == "edifact-cuscar"}
    assert cuscar == {("1", "KTCT"), ("4", "HKIA")}
    for office in ("KTCT", "HKIA"):
        mine = (
            "SELECT count(*) FROM std.consignments c "
            "JOIN std.manifests m ON m.record_id = c.parent_record_id "
            f"WHERE c.source = 'edifact-cuscar' AND m.customs_office = '{office}'"
        )
        seen = open_query(
            lake,
            principal("targeting_officer", office=office),
            "SELECT count(*) AS n FROM std.consignments WHERE source = 'edifact-cuscar'",
        )
        assert seen.reader.read_all().to_pylist() == [{"n": count(instance, mine)}]
        assert count(instance, mine) > 0, office


def test_elock_trips_and_watchlist_reach_the_lake_whole(loaded, instance, tiny_world):
    trips = count(instance, f"SELECT count(DISTINCT trip_id) FROM ({ELOCK.format(col='trip_id')})")
    assert trips == tiny_world.counts["elock.trips"]
    tampers = count(instance, "SELECT count(*) FROM std.elock_events WHERE event_type = 'tamper_alert'")
    labels = (tiny_world.out / TRUTH / "labels.csv").read_text(encoding="utf-8")
    assert tampers >= labels.count(",elock_tamper,")
    texts = count(instance, "SELECT count(*) FROM std.intelligence_reports WHERE length(text) > 40")
    assert texts == tiny_world.counts["intel/reports.jsonl"]
    assert count(instance, "SELECT count(*) FROM std.passengers WHERE control_point IS NULL") == 0


@pytest.mark.parametrize(
    ("child", "parent", "source"),
    [
        ("std.declaration_items", "std.declarations", "demo-clearance"),
        ("std.declaration_parties", "std.declarations", "demo-clearance"),
        ("std.consignments", "std.manifests", "demo-road-cargo"),
        ("std.transport_equipment", "std.consignments", "demo-road-cargo"),
    ],
)
def test_children_link_to_their_parent_across_files(loaded, instance, child, parent, source):
    """Items and parties come in their own files, under the same source as their declarations."""
    linked = count(instance, f"SELECT count(*) FROM {child} WHERE source = '{source}'")
    orphans = count(
        instance,
        f"SELECT count(*) FROM {child} AS c WHERE c.source = '{source}' AND NOT EXISTS "
        f"(SELECT 1 FROM {parent} AS p WHERE p.record_id = c.parent_record_id)",
    )
    assert linked > 0 and orphans == 0


def test_intelligence_reports_keep_their_original_in_the_object_store(loaded, instance, tiny_world):
    from sciti.acquire.blobs import object_path

    rows = query(Runner(instance).lake, "SELECT unit, object_key FROM raw.demo_intel").to_pylist()
    (report,) = [r for r in rows if r["unit"] == "reports.jsonl"]
    original = (tiny_world.out / "intel/reports.jsonl").read_bytes()
    assert object_path(instance, report["object_key"]).read_bytes() == original
    texts = query(Runner(instance).lake, "SELECT language, text FROM std.intelligence_reports").to_pylist()
    assert {t["language"] for t in texts} <= {"en", "zh", "ru"}
    assert any("線人" in t["text"] for t in texts if t["language"] == "zh")


def test_reference_files_are_published_to_ref(loaded, instance, tiny_world):
    prices = (tiny_world.out / "reference/unit_prices.csv").read_text(encoding="utf-8").splitlines()
    assert loaded.reference["ref.demo_unit_prices"] == len(prices) - 1
    assert count(instance, "SELECT count(*) FROM ref.demo_elock_routes WHERE path_wkt LIKE 'LINESTRING%'") > 0
    codes = query(Runner(instance).lake, "SELECT code FROM ref.demo_control_points").column(0).to_pylist()
    assert {"LMC", "HZMB", "CN-FUTIAN"} <= set(codes)


def test_loading_again_stores_nothing_new(loaded, instance, tiny_world):
    again = load_world(instance, tiny_world.out, feeds=["demo-cases", "wco-dec"], reference=False)
    statuses = {r.status for f in again.feeds for r in f.results}
    assert statuses == {"duplicate"}
    assert count(instance, "SELECT count(*) FROM std.cases") == tiny_world.counts["cases/cases.csv"]


# ---- deliberately corrupted copies are quarantined with a reason ----------------------------


def csv_cell(column: str, value: str) -> Callable[[bytes], bytes]:
    """Header and the first three rows, with ``column`` of the second (or only) row set to ``value``."""

    def damage(data: bytes) -> bytes:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))[:4]
        rows[min(2, len(rows) - 1)][rows[0].index(column)] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode("utf-8")

    return damage


def json_key(key: str, value: object) -> Callable[[bytes], bytes]:
    """The first three lines, with ``key`` of the second one set to ``value``."""

    def damage(data: bytes) -> bytes:
        lines = data.decode("utf-8").splitlines()[:3]
        obj = json.loads(lines[1])
        obj[key] = value
        lines[1] = json.dumps(obj, ensure_ascii=False)
        return ("\n".join(lines) + "\n").encode("utf-8")

    return damage


def replace(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda data: data.replace(old, new, 1)


def cut_line(data: bytes) -> bytes:
    """Three lines, the second cut in half (a truncated message)."""
    lines = data.splitlines()[:3]
    lines[1] = lines[1][: len(lines[1]) // 2]
    return b"\n".join(lines) + b"\n"


CORRUPTIONS = [
    (
        "demo-declarations",
        "declarations/csv/declarations.csv",
        csv_cell("acceptance_date", "2026-13-45"),
        "acceptance_date",
    ),
    (
        "demo-declaration-items",
        "declarations/csv/declaration_items.csv",
        csv_cell("hs_code", "99999999"),
        "hs_code",
    ),
    (
        "demo-declaration-parties",
        "declarations/csv/declaration_parties.csv",
        csv_cell("country", "ZZ"),
        "country",
    ),
    ("demo-crossings", "road/crossings.csv", csv_cell("direction", "SIDEWAYS"), "direction"),
    ("demo-road-cargo", "road/road_cargo.jsonl", json_key("consignments", []), "consignments"),
    ("demo-road-cargo", "road/road_cargo.jsonl", json_key("container_id", "MSCU1234560"), "container_id"),
    ("demo-elock", "elock/messages.jsonl", json_key("kind", "noise"), "event_type"),
    ("demo-elock", "elock/messages.jsonl", cut_line, "not valid JSON"),
    (
        "demo-passengers",
        "passengers/api_records.jsonl",
        json_key("departure_date", "yesterday"),
        "departure_date",
    ),
    ("demo-currency", "currency/cbni.csv", csv_cell("currency", "ZZZ"), "currency"),
    ("demo-inspections", "inspections/inspections.csv", csv_cell("outcome", "maybe"), "outcome"),
    ("demo-seizures", "seizures/seizures.csv", csv_cell("seized_at", "soon"), "seized_at"),
    ("demo-cases", "cases/cases.csv", csv_cell("status", "pending"), "status"),
    ("demo-intel-reports", "intel/reports.jsonl", json_key("source_reliability", "Z"), "source_reliability"),
    ("demo-watchlist", "intel/watchlist.csv", csv_cell("listed_on", "someday"), "listed_on"),
    ("demo-seclogs", "seclogs/auth.jsonl", json_key("event_id", "xx-20260101-000002"), "log"),
    ("demo-seclogs", "seclogs/firewall.jsonl", json_key("ts", "noon"), "event_at"),
]


@pytest.fixture
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An instance of its own for each damaged copy, so the loaded one keeps the generator's counts
    and the copy's undamaged records are new there (a record another batch stored is quarantined:
    decision 0100)."""
    return make_settings(tmp_path_factory.mktemp("demo_scratch"))


@pytest.mark.parametrize(
    ("connector", "file", "damage", "reason"), CORRUPTIONS, ids=[f"{c[0]}-{c[3]}" for c in CORRUPTIONS]
)
def test_corrupted_copies_are_quarantined(tiny_world, scratch, tmp_path, connector, file, damage, reason):
    source = tiny_world.out / file
    copy = tmp_path / source.name
    copy.write_bytes(damage(source.read_bytes()))
    (result,) = Runner(scratch).ingest_path(load_connector(scratch, connector), copy)
    assert result.status == "committed", result.error
    assert result.quarantined == 1 and result.stored == result.received - 1, result
    (entry,) = [q for q in list_quarantine(scratch) if q["batch_id"] == result.batch_id]
    assert reason in entry["reason"], entry["reason"]
    assert entry["locator"].endswith((":line 2", ":line 3")), entry["locator"]  # the damaged row


@pytest.mark.parametrize(
    ("connector", "folder", "pattern", "damage"),
    [
        (
            "wco-dec",
            "declarations/xml",
            "*.xml",
            replace(b"<FunctionCode>9</FunctionCode>", b"<FunctionCode>99x</FunctionCode>"),
        ),
        ("edifact-cuscar", "manifests/cuscar", "*.edi", replace(b"UNT+", b"UNT+9")),
    ],
)
def test_corrupted_messages_are_quarantined(
    tiny_world, scratch, tmp_path, connector, folder, pattern, damage
):
    source = sorted((tiny_world.out / folder).glob(pattern))[0]
    copy = tmp_path / source.name
    copy.write_bytes(damage(source.read_bytes()))
    (result,) = Runner(scratch).ingest_path(load_connector(scratch, connector), copy)
    assert result.quarantined >= 1
    assert result.received == result.stored + result.quarantined


# ---- the e-lock feed live over MQTT ----------------------------------------------------------


@pytest.mark.mqtt
def test_elock_messages_over_mqtt_land_like_the_file(tiny_world, tmp_path):
    from sciti.acquire.transports import MqttSubscriber, transport_spec
    from sciti.demo.replay import publish_elock

    settings = make_settings(tmp_path / "instance", buffer_max_seconds=0.5)
    (tmp_path / "instance").mkdir()
    runner = Runner(settings)
    connector = load_connector(settings, "demo-elock-mqtt")
    spec = transport_spec(settings, connector)
    assert spec is not None and set(spec.topics) == {"elock/+/gps", "elock/+/event"}
    prefix = f"sciti-test/{uuid.uuid4().hex[:10]}/"  # our own topics on the shared broker
    spec = spec.model_copy(
        update={"topic": tuple(prefix + t for t in spec.topics), "client_id": f"sciti-{prefix[11:21]}"}
    )
    sub = MqttSubscriber(settings, connector, spec, runner)
    sub.start()
    try:
        assert sub.subscribed.wait(20), "the subscription to the real broker was not confirmed"
        sent = publish_elock(tiny_world.out, topic_prefix=prefix, limit=120)
        lake = runner.lake

        def stored() -> int:
            tables = [t for t in ("std.elock_fixes", "std.elock_events") if lake.exists(t)]
            return sum(lake.table(t).scan().to_arrow().num_rows for t in tables)

        # Generous: a loaded machine may drop the connection; the broker then redelivers what was
        # not acknowledged, and the staging buffer drops what it already has.
        deadline = time.monotonic() + 180
        while stored() < sent and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        sub.stop()
    assert sent == 120 and stored() == sent
    lines = [json.loads(x) for x in (tiny_world.out / "elock/messages.jsonl").read_text().splitlines()[:120]]
    events = query(lake, "SELECT record_id, topic FROM std.elock_events").to_pylist()
    expected = {
        make_record_id("elock_event", "demo-elock", m["elock_id"], m["msg_id"]): prefix + m["topic"]
        for m in lines
        if m["kind"] == "event"
    }
    assert events and {e["record_id"]: e["topic"] for e in events} == expected


# ---- `sciti demo load` as a person runs it ----------------------------------------------------


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    from sciti.settings import get_settings

    for name, value in {
        "SCITI_HOME": settings.home,
        "SCITI_CODELISTS_DIR": settings.codelists_dir,
        "SCITI_WCO_SCHEMA_DIR": settings.wco_schema_dir,
        "SCITI_EDIFACT_DIR": settings.edifact_dir,
        "SCITI_CONNECTORS_DIR": settings.connectors_dir,
    }.items():
        monkeypatch.setenv(name, str(value))
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def cli():
    import typer

    from sciti.cli import demo

    root = typer.Typer()
    demo.register(root)
    root.callback()(lambda: None)  # a group, as in sciti.cli.main
    return root


def test_demo_load_command(tiny_world, cli_env):
    from typer.testing import CliRunner

    args = ["demo", "load", str(tiny_world.out), "--feed", "demo-cases", "--feed", "demo-watchlist"]
    result = CliRunner().invoke(cli(), args, terminal_width=200)
    assert result.exit_code == 0, result.output
    n = tiny_world.counts["cases/cases.csv"] + tiny_world.counts["intel/watchlist.csv"]
    assert f"received {n} = stored {n} + quarantined 0" in result.output
    assert "published ref.demo_unit_prices" in result.output


@pytest.mark.parametrize(
    ("where", "args", "shown"),
    [
        (TRUTH, [], "never ingested"),
        ("", ["--feed", "demo-nothing"], "no demo feed is read by connector 'demo-nothing'"),
    ],
)
def test_demo_load_command_fails_with_one_line_reason(tiny_world, cli_env, where, args, shown):
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        cli(), ["demo", "load", str(tiny_world.out / where), *args], terminal_width=200
    )
    assert result.exit_code == 1
    assert shown in result.output
