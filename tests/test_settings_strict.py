"""Settings refuse what they cannot use: a misspelt key in sciti.toml, a SCITI_ variable that looks
like a misspelt setting, a database SCITI has no driver for, an unknown log level, a missing
retention file. Each refusal names the file or setting and what to write instead (decision 0095)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from sciti.access.sso import SsoSettings
from sciti.settings import TOML_SECTIONS, Settings, SettingsError, toml_source

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Harbour-Pw-9"


@pytest.fixture
def toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write sciti.toml in a fresh working directory, with no SCITI_ variable set."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.upper().startswith("SCITI_")]:
        monkeypatch.delenv(name)

    def write(text: str) -> Path:
        path = tmp_path / "sciti.toml"
        path.write_text(text, "utf-8")
        return path

    return write


# -- sciti.toml: every key names a setting -----------------------------------------------------
def test_a_misspelt_key_is_refused_naming_the_file_the_key_and_the_closest_setting(toml) -> None:
    path = toml(f'ops_db_uri = "postgresql+psycopg://sciti:{PASSWORD}@db/sciti"\n')
    with pytest.raises(SettingsError) as refused:
        Settings()
    line = str(refused.value)
    assert str(path) in line and "ops_db_uri" in line and "did you mean ops_db_url?" in line
    assert "\n" not in line and PASSWORD not in line


def test_every_misspelt_key_is_named_at_once(toml) -> None:
    toml('log_levl = "DEBUG"\nhome = "x"\ncatalog_url = "sqlite:///c.db"\nnothing_like_it = 1\n')
    with pytest.raises(SettingsError) as refused:
        Settings()
    line = str(refused.value)
    assert "log_levl (did you mean log_level?)" in line
    assert "catalog_url (did you mean catalog_uri?)" in line
    assert "unknown setting nothing_like_it" in line


def test_an_unknown_table_is_refused(toml) -> None:
    toml("port = 8123\n[SSO]\nissuer = 'https://idp.example'\n")
    with pytest.raises(SettingsError, match=re.escape("unknown table [SSO] (did you mean [sso]?)")):
        Settings()
    toml("[lake]\nkeep_days = 3\n")
    with pytest.raises(SettingsError, match=re.escape("unknown table [lake] (the tables are: [sso])")):
        Settings()


def test_a_misspelt_key_in_the_sso_table_is_refused(toml) -> None:
    path = toml(
        '[sso]\nissuer = "https://idp.example"\nclientid = "sciti"\n[sso.rolemap]\n"g" = ["analyst"]\n'
    )
    assert Settings().port == 8000  # the core settings leave [sso] to its own class
    with pytest.raises(SettingsError) as refused:
        SsoSettings()
    line = str(refused.value)
    assert str(path) in line
    assert (
        "[sso] clientid (did you mean client_id?)" in line
        and "[sso] rolemap (did you mean role_map?)" in line
    )


def test_a_core_setting_written_under_a_table_is_explained(toml) -> None:
    # TOML puts every line after [sso] into [sso]: a setting appended at the end lands there.
    toml('[sso]\nissuer = "https://idp.example"\nlog_level = "DEBUG"\n')
    with pytest.raises(SettingsError, match=r"log_level belongs above the first \[table\]"):
        SsoSettings()


def test_a_line_that_is_not_toml_names_the_file_line_and_column(toml) -> None:
    path = toml('home = "instance"\nops_db_url\n')
    with pytest.raises(SettingsError) as refused:
        Settings()
    line = str(refused.value)
    assert line.startswith(f"{path}: line 2, column 11: not valid TOML") and "\n" not in line
    assert "`name = value`" in line


def test_keyword_arguments_are_strict_too(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ops_db_uri"):
        Settings(home=tmp_path, ops_db_uri="sqlite:///x.db")  # type: ignore[call-arg]


def test_a_correct_file_with_a_table_is_read(toml) -> None:
    """Control: every setting and the [sso] table, as the documentation writes them."""
    toml(
        'home = "instance"\nport = 8123\nlog_level = "WARNING"\ntrusted_proxies = ["10.0.0.5"]\n'
        'ops_db_url = "postgresql+psycopg://sciti@db/sciti"\n'
        '[sso]\nissuer = "https://idp.example"\nclient_id = "sciti"\n[sso.role_map]\n"risk" = ["analyst"]\n'
    )
    s = Settings()
    assert (s.port, s.log_level, s.trusted_proxies, s.home) == (
        8123,
        "WARNING",
        ["10.0.0.5"],
        Path("instance"),
    )
    assert SsoSettings().role_map == {"risk": ["analyst"]}


def _documented_toml() -> list[tuple[str, str]]:
    blocks = []
    for doc in sorted((ROOT / "docs").rglob("*.md")):
        if "decisions" in doc.parts:  # records quote the mistakes they fixed
            continue
        for block in re.findall(r"```toml\n(.*?)```", doc.read_text("utf-8"), re.S):
            blocks.append((doc.name, block))
        for example in re.findall(r"`([a-z_]+ = [^`]+)` in `sciti\.toml`", doc.read_text("utf-8")):
            blocks.append((doc.name, example))
    return blocks


@pytest.mark.parametrize(("doc", "block"), _documented_toml(), ids=lambda v: v if v.endswith(".md") else "")
def test_every_documented_sciti_toml_is_accepted(toml, doc, block) -> None:
    """Control: what the guides tell an operator to write has only keys the settings know."""
    indented = "\n".join(line.strip() for line in block.splitlines())
    toml(indented)
    tables = [key for key, value in tomllib.loads(indented).items() if isinstance(value, dict)]
    toml_source(Settings)()  # the reader alone: the files the guides name need not exist here
    for table in tables:
        assert table in TOML_SECTIONS
        toml_source(SsoSettings, table)()


# -- SCITI_ variables ----------------------------------------------------------------------------
def test_a_variable_that_looks_like_a_misspelt_setting_is_refused(toml, monkeypatch) -> None:
    monkeypatch.setenv("SCITI_OPS_DB_URI", "postgresql+psycopg://sciti@db/sciti")
    with pytest.raises(
        SettingsError, match=r"SCITI_OPS_DB_URI names no setting \(did you mean SCITI_OPS_DB_URL\?\)"
    ):
        Settings()


def test_a_variable_that_looks_like_a_misspelt_sso_setting_is_refused(toml, monkeypatch) -> None:
    monkeypatch.setenv("SCITI_SSO_CLIENTID", "sciti")
    assert Settings().port == 8000  # the SCITI_SSO_ family is the [sso] class's to check
    with pytest.raises(SettingsError, match=r"did you mean SCITI_SSO_CLIENT_ID\?"):
        SsoSettings()


@pytest.mark.parametrize(
    "name",
    ["SCITI_USER", "SCITI_SECRET_KEY_FILE", "SCITI_SECRET_CUSTOMS_DB", "SCITI_SHARED_DATA", "SCITI_TEST_PG"],
)
def test_other_programs_keep_their_sciti_variables(toml, monkeypatch, name) -> None:
    """Control: the CLI's acting account, development secrets, the test harness's own variables."""
    monkeypatch.setenv(name, "anything")
    monkeypatch.setenv("SCITI_SSO_ISSUER", "https://idp.example")
    assert Settings().port == 8000
    assert SsoSettings().issuer == "https://idp.example"


# -- database URLs -------------------------------------------------------------------------------
@pytest.mark.parametrize("setting", ["ops_db_url", "catalog_uri"])
def test_postgres_spelt_without_the_driver_is_refused_with_the_url_to_write(tmp_path, setting) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(home=tmp_path, **{setting: f"postgres://sciti:{PASSWORD}@db.customs:5432/sciti"})
    (error,) = refused.value.errors()
    assert error["loc"] == (setting,)
    assert "write postgresql+psycopg://sciti:***@db.customs:5432/sciti" in error["msg"]
    assert PASSWORD not in str(refused.value)  # nor in the printed error, which shows inputs otherwise


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"mysql://sciti:{PASSWORD}@db/sciti", "SCITI keeps its databases in PostgreSQL or SQLite"),
        (f"postgresql://sciti:{PASSWORD}@db/sciti", "write postgresql+psycopg://sciti:***@db/sciti"),
        (f"postgresql+psycopg2://sciti:{PASSWORD}@db/sciti", "write postgresql+psycopg://"),
        ("sqlite+aiosqlite:///ops.db", "write sqlite:///ops.db"),
        (f"db.customs/sciti?password={PASSWORD}", "not a database URL"),
    ],
)
def test_databases_sciti_has_no_driver_for_are_refused(tmp_path, url, says) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(home=tmp_path, ops_db_url=url)
    assert says in str(refused.value) and PASSWORD not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    ["sqlite:///{tmp}/ops.db", "sqlite+pysqlite:///{tmp}/ops.db", "postgresql+psycopg://sciti:pw@db/sciti"],
)
def test_the_supported_databases_are_accepted(tmp_path, url) -> None:
    """Control."""
    assert Settings(home=tmp_path, ops_db_url=url.format(tmp=tmp_path)).ops_db_url == url.format(tmp=tmp_path)


# -- log level, files ------------------------------------------------------------------------------
def test_an_unknown_log_level_is_refused(tmp_path) -> None:
    with pytest.raises(ValidationError, match="'DEBUG', 'INFO', 'WARNING' or 'ERROR'"):
        Settings(home=tmp_path, log_level="LOUD")
    assert Settings(home=tmp_path, log_level=" debug").log_level == "DEBUG"  # any case, as before


# -- national currency and cash threshold (decision 0111) ------------------------------------------
@pytest.mark.parametrize("code", ["EURO", "XYZ", "HK", ""])
def test_a_national_currency_iso_4217_does_not_list_is_refused(tmp_path, code) -> None:
    with pytest.raises(ValidationError, match=f"'{code}' is not an ISO 4217 currency code: write the three"):
        Settings(home=tmp_path, national_currency=code)


@pytest.mark.parametrize(
    ("amount", "says"),
    [(0, "greater than 0"), (-10_000, "greater than 0"), ("nan", "finite number"), ("inf", "finite number"),
     ("ten thousand", "valid decimal")],
)  # fmt: skip
def test_a_cash_threshold_that_is_not_a_positive_amount_is_refused(tmp_path, amount, says) -> None:
    with pytest.raises(ValidationError, match=f"cash_reporting_threshold\n  Input should be a? ?{says}"):
        Settings(home=tmp_path, cash_reporting_threshold=amount)


def test_the_currency_and_threshold_are_read_from_the_file_and_the_environment(toml, monkeypatch) -> None:
    assert (Settings().national_currency, Settings().cash_reporting_threshold) == ("HKD", 120_000)
    toml('national_currency = "eur"\ncash_reporting_threshold = 10000\n')
    assert (Settings().national_currency, Settings().cash_reporting_threshold) == ("EUR", 10_000)
    monkeypatch.setenv("SCITI_NATIONAL_CURRENCY", " krw ")
    monkeypatch.setenv("SCITI_CASH_REPORTING_THRESHOLD", "10000.50")
    assert (Settings().national_currency, str(Settings().cash_reporting_threshold)) == ("KRW", "10000.50")


def test_a_missing_retention_file_is_refused_naming_the_setting(tmp_path) -> None:
    with pytest.raises(
        ValidationError, match="retention_file .* names /nonexistent/ret.yaml, which is not a file"
    ):
        Settings(home=tmp_path, retention_file=Path("/nonexistent/ret.yaml"))
    rules = tmp_path / "retention.yaml"
    rules.write_text("kinds: {}\n", "utf-8")
    assert Settings(home=tmp_path, retention_file=rules).retention_file == rules


def test_openbao_files_must_exist_only_when_openbao_is_the_backend(tmp_path) -> None:
    missing = tmp_path / "no-token"
    assert Settings(home=tmp_path, openbao_token_file=missing).secrets_backend == "local"
    with pytest.raises(ValidationError, match="openbao_token_file .* which is not a file"):
        Settings(home=tmp_path, secrets_backend="openbao", openbao_token_file=missing)
