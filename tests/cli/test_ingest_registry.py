"""`sciti batches`, `sciti quarantine ...` and `sciti ingest` as a data engineer runs them.

- The registry commands read an instance; they do not make one (decision 0094). On a folder that
  never had `sciti init` they used to exit 0 with an empty table and leave a 400 KB ops.db behind.
- A file missing a column the connector maps is a failed batch, not one quarantine entry.
- Files of one name in two folders keep their folder in the unit name and in every locator.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from alembic import command
from alembic.migration import MigrationContext
from sqlalchemy import select
from typer.testing import CliRunner

from sciti.access import create_user
from sciti.acquire import Runner
from sciti.acquire.quarantine import _schema_revisions
from sciti.cli.main import app
from sciti.ops import User, get_engine, session_scope
from sciti.ops.db import alembic_config
from sciti.settings import Settings
from tests.acquire.conftest import DECL_CONNECTOR, HEADER, write_connector
from tests.conftest import make_settings

# The acquisition tests' declarations connector, with its declaration output only.
DECL = {**DECL_CONNECTOR, "outputs": DECL_CONNECTOR["outputs"][:1]}
REGISTRY_COMMANDS = [
    ["batches"],
    ["quarantine", "list"],
    ["quarantine", "show", "1"],
    ["quarantine", "resubmit", "1"],
    ["quarantine", "discard", "1", "--reason", "not ours"],
]
cli = CliRunner()


@pytest.fixture
def instance(tmp_path: Path, cli_on):
    """Settings for a home that does not exist yet; ``use(settings)`` points the CLI at them."""
    (tmp_path / "connectors").mkdir()
    settings = make_settings(tmp_path / "never initialised", connectors_dir=tmp_path / "connectors")
    write_connector(settings, DECL)

    def use(chosen: Settings) -> Settings:
        cli_on(chosen)
        return chosen

    return settings, use


def as_engineer(settings: Settings, *args: str):
    """``args`` run as a data engineer: quarantine commands act as a named account (decision 0099)."""
    with session_scope(settings.resolved_ops_db_url) as s:
        if s.scalar(select(User).where(User.username == "engineer")) is None:
            create_user(s, "engineer", ["data_engineer"], service=True)
    return cli.invoke(app, [*args, "--user", "engineer"])


def one_line(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args", REGISTRY_COMMANDS, ids=" ".join)
def test_a_registry_command_on_a_home_never_initialised_says_so_and_makes_nothing(instance, args) -> None:
    settings, use = instance
    use(settings)
    line = one_line(cli.invoke(app, args), "is not initialised", "sciti init", "ops.db")
    assert "operational database" in line
    assert not settings.home.exists()  # no folder, no ops.db


@pytest.mark.parametrize("args", REGISTRY_COMMANDS[:2], ids=" ".join)
def test_a_registry_command_in_an_existing_empty_folder_makes_no_database(instance, args) -> None:
    settings, use = instance
    settings.home.mkdir()
    use(settings)
    one_line(cli.invoke(app, args), "is not initialised", "sciti init")
    assert list(settings.home.iterdir()) == []


@pytest.mark.postgres
@pytest.mark.parametrize("args", REGISTRY_COMMANDS[:2], ids=" ".join)
def test_a_registry_command_on_an_empty_postgresql_database_says_so(instance, pg_database, args) -> None:
    settings, use = instance
    use(settings.model_copy(update={"ops_db_url": pg_database}))
    one_line(cli.invoke(app, args), "is not initialised", "sciti init", "it has no SCITI schema")
    with get_engine(pg_database).connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == ()  # nothing was set up


def test_a_registry_command_on_an_older_schema_says_so_and_leaves_it(instance) -> None:
    settings, use = instance
    settings.home.mkdir()
    url = settings.resolved_ops_db_url
    command.upgrade(alembic_config(url), "0003")
    use(settings)
    one_line(cli.invoke(app, ["batches"]), "not initialised for this version", "revision 0003", "sciti init")
    with get_engine(url).connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == ("0003",)


def test_a_registry_command_on_a_schema_from_a_newer_version_says_so(instance) -> None:
    settings, use = instance
    Runner(use(settings))
    with get_engine(settings.resolved_ops_db_url).begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    one_line(cli.invoke(app, ["batches"]), "schema this version of SCITI does not know", "revision 9999")


def test_the_registry_commands_read_an_initialised_instance(instance) -> None:
    """Control: with the schema in place the commands answer as before."""
    settings, use = instance
    Runner(use(settings))
    done = cli.invoke(app, ["batches", "--json"])
    assert done.exit_code == 0 and orjson.loads(done.output) == []
    done = as_engineer(settings, "quarantine", "list", "--json")
    assert done.exit_code == 0 and orjson.loads(done.output) == []


def test_ingest_of_a_file_missing_a_mapped_column_fails_and_is_retried_once_fixed(instance, tmp_path) -> None:
    settings, use = instance
    use(settings)
    typo = {**DECL, "outputs": [{**DECL["outputs"][0], "fields": {**DECL["outputs"][0]["fields"]}}]}
    typo["outputs"][0]["fields"]["office_code"] = "office_id"
    write_connector(settings, typo)
    c6 = tmp_path / "c6.csv"
    c6.write_text(HEADER + "\n" + "".join(f"C6-{i},2024-07-01,KRPUS,{i},USD,851713,\n" for i in range(10)))

    failed = cli.invoke(app, ["ingest", "decl", str(c6)])
    line = failed.output.strip().splitlines()[-1]
    assert failed.exit_code == 1 and "1 batch(es) failed: c6.csv" in line
    assert "no column 'office_id', which connector decl maps" in line and "connector.yaml" in line
    (batch,) = orjson.loads(cli.invoke(app, ["batches", "--json"]).output)
    assert (batch["status"], batch["received"], batch["quarantined"]) == ("failed", 0, 0)
    assert orjson.loads(as_engineer(settings, "quarantine", "list", "--json").output) == []

    write_connector(settings, DECL)  # the connector fixed
    done = cli.invoke(app, ["ingest", "decl", str(c6), "--json"])
    assert done.exit_code == 0, done.output
    (again,) = orjson.loads(done.output)
    assert (again["status"], again["batch_id"], again["received"], again["stored"]) == (
        "committed",
        batch["batch_id"],
        10,
        10,
    )


def test_files_of_one_name_in_two_folders_keep_their_folder_in_the_locator(instance, tmp_path) -> None:
    settings, use = instance
    use(settings)
    inbox = tmp_path / "inbox"
    (inbox / "old").mkdir(parents=True)
    (inbox / "records.csv").write_text(f"{HEADER}\nN1,2024-13-01,KRPUS,1,USD,851713,\n")
    (inbox / "old" / "records.csv").write_text(f"{HEADER}\nO1,2024-13-02,KRPUS,1,USD,851713,\n")
    done = cli.invoke(app, ["ingest", "decl", str(inbox), "--json"])
    assert done.exit_code == 0, done.output
    assert sorted(r["unit"] for r in orjson.loads(done.output)) == ["old/records.csv", "records.csv"]
    entries = orjson.loads(as_engineer(settings, "quarantine", "list", "--json").output)
    assert sorted(e["locator"] for e in entries) == ["old/records.csv:line 2", "records.csv:line 2"]
    # A file named by itself is known by its name, as before.
    single = cli.invoke(app, ["ingest", "decl", str(inbox / "old" / "records.csv"), "--json"])
    assert [r["unit"] for r in orjson.loads(single.output)] == ["records.csv"]


def test_sciti_init_brings_an_older_schema_up_to_date(instance) -> None:
    """The remedy the registry commands give for an older schema works: `sciti init` (as `make run`
    calls it, with --if-missing) upgrades an existing instance and keeps it."""
    settings, use = instance
    use(settings)
    assert cli.invoke(app, ["init"]).exit_code == 0
    url = settings.resolved_ops_db_url
    command.downgrade(alembic_config(url), "0003")
    one_line(cli.invoke(app, ["batches"]), "not initialised for this version", "revision 0003")
    again = cli.invoke(app, ["init", "--if-missing"])
    assert again.exit_code == 0 and "schema up to date" in again.output, again.output
    assert cli.invoke(app, ["batches"]).exit_code == 0
    with get_engine(url).connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(_schema_revisions()[0])


def test_ingest_says_how_many_stored_rows_replaced_a_record(instance, tmp_path) -> None:
    """A table export read again after rows changed at the source (``on_change: replace``, decision
    0112): the summary says how many of the stored rows replaced a record, the JSON carries it."""
    settings, use = instance
    use(settings)
    write_connector(settings, {**DECL, "on_change": "replace"})
    first, second = tmp_path / "day1.csv", tmp_path / "day2.csv"
    first.write_text(HEADER + "\n" + "".join(f"R-{i},2024-07-01,KRPUS,{i},USD,851713,\n" for i in range(4)))
    second.write_text(
        HEADER + "\n" + "".join(f"R-{i},2024-07-01,KRPUS,{i + (i < 2)},USD,851713,\n" for i in range(4))
    )
    assert cli.invoke(app, ["ingest", "decl", str(first)]).exit_code == 0

    done = cli.invoke(app, ["ingest", "decl", str(second)], terminal_width=200)
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    assert "received 4 = stored 2 + quarantined 0 + already stored 2" in text
    assert "2 of the stored replaced a record stored before with other values" in text
    (batch,) = [
        b for b in orjson.loads(cli.invoke(app, ["batches", "--json"]).output) if b["unit"] == "day2.csv"
    ]
    assert (batch["stored"], batch["replaced"], batch["already_stored"]) == (2, 2, 2)


def test_brackets_in_file_names_and_quarantined_values_are_shown_as_text(
    instance, tmp_path, monkeypatch
) -> None:
    """Rich reads "[copy]" as a style and "[/]" as a closing tag: a file name lost its part in
    brackets, and a refused value holding "[/]" made `quarantine list` and `show` crash."""
    from sciti.cli.common import console

    settings, use = instance
    use(settings)
    monkeypatch.setattr(console, "width", 240)  # whole cells: a name folded over lines is not found
    unit = tmp_path / "manifest [copy].csv"
    unit.write_text(f"{HEADER}\nB1,2024-13-01[/],KRPUS,1,USD,851713,\nB2,2024-07-01,KRPUS,1,USD,851713,\n")

    done = cli.invoke(app, ["ingest", "decl", str(unit)], terminal_width=200)
    assert done.exit_code == 0, done.output
    assert "manifest [copy].csv" in done.output
    batches = cli.invoke(app, ["batches"], terminal_width=200)
    assert batches.exit_code == 0 and "manifest [copy].csv" in batches.output, batches.output
    listed = as_engineer(settings, "quarantine", "list")
    assert listed.exit_code == 0, listed.output
    assert "[/]" in listed.output and "manifest [copy].csv" in listed.output
    (entry,) = orjson.loads(as_engineer(settings, "quarantine", "list", "--json").output)
    shown = as_engineer(settings, "quarantine", "show", str(entry["id"]))
    assert shown.exit_code == 0, shown.output
    assert f"reason: {entry['reason']}" in " ".join(shown.output.split()), shown.output
