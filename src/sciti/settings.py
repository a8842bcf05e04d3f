"""Every SCITI option in one typed, documented class.

Sources, highest first: arguments passed in code, ``SCITI_*`` environment variables, ``sciti.toml``
in the working directory, then the defaults below. Paths that are not absolute are taken relative
to the working directory; everything an instance stores lives under ``home`` unless pointed
elsewhere (a shared deployment points the catalog and operational database at PostgreSQL).

Nothing is skipped silently (decision 0095): a key of sciti.toml that names no setting, a SCITI_
variable that looks like a misspelt one, a database URL SCITI has no driver for and a named file
that does not exist are refused when the settings load, each on one line.
"""

from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import os
import re
import tomllib
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pycountry
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sciti.errors import ConfigError

TOML_FILE = "sciti.toml"
# The tables sciti.toml may have, each read by its own settings class (``toml_source(cls, table)``).
TOML_SECTIONS = ("sso",)
# SCITI_ variables that are not settings: the CLI's acting account and development secrets
# (sciti.access.secrets). Tests, benches and other programs use the prefix too (SCITI_SHARED_DATA).
NOT_SETTINGS = ("SCITI_USER", "SCITI_SECRET_*")
# How alike a SCITI_ variable's name must be to a setting's to be taken for a misspelling of it:
# SCITI_OPS_DB_URI (0.9) is refused, SCITI_SHARED_DATA (like nothing) is left to its own program.
_MISSPELT = 0.8
_DATABASE_EXAMPLES = "postgresql+psycopg://user@host/database (PostgreSQL) or sqlite:///path/to/file.db"


class SettingsError(ConfigError):
    """sciti.toml or a SCITI_ variable that cannot be read as settings. The message names the file
    (or variable), the key and what to write instead, on one line."""

    code = "settings_error"


@lru_cache(maxsize=64)
def _resolve(path: Path, cwd: str) -> Path:
    return path.resolve()


def _absolute(path: Path) -> Path:
    """``path.resolve()``, remembered: the operational database's URL is read on every request,
    and resolving walks the file system each time. A relative path is keyed by the working directory."""
    return _resolve(path, "" if path.is_absolute() else str(Path.cwd()))


def _closest(name: str, valid: list[str], cutoff: float = 0.6) -> str | None:
    """The valid name most like ``name`` (difflib), whatever the case; None if none is close."""
    spelt = {item.lower(): item for item in valid}
    found = difflib.get_close_matches(name.lower(), list(spelt), n=1, cutoff=cutoff)
    return spelt[found[0]] if found else None


class _TomlFile(TomlConfigSettingsSource):
    """sciti.toml in the working directory: the whole file, or one table of it (``[sso]``).

    Strict: a key that names no setting is refused, never skipped. A skipped ``ops_db_uri`` once
    sent an instance on PostgreSQL to a fresh SQLite file while its lake stayed shared.
    """

    def __init__(self, settings_cls: type[BaseSettings], table: str | None = None):
        self._table, self._fields_of = table, settings_cls  # the parent reads the file before it sets its own
        super().__init__(settings_cls, toml_file=TOML_FILE, toml_table_header=())

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        where = Path(file_path).absolute()
        try:
            data = super()._read_file(file_path)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(
                f"{where}: {_toml_problem(exc)}",
                remedy='write each setting as one `name = value` line, text in quotes: log_level = "INFO"',
            ) from None
        except UnicodeDecodeError:
            raise SettingsError(f"{where} is not UTF-8 text", remedy="save it as UTF-8") from None
        except OSError as exc:
            raise SettingsError(f"cannot read {where}: {exc.strerror or exc}") from None
        if self._table is None:
            _refuse_unknown(data, self._fields_of, where, sections=TOML_SECTIONS)
            # The tables belong to their own settings classes, which read and check them.
            return {key: value for key, value in data.items() if key not in TOML_SECTIONS}
        section = data.get(self._table)
        if section is None:
            return {}
        if not isinstance(section, dict):
            raise SettingsError(f"{where}: {self._table} must be a table: [{self._table}] and its lines")
        _refuse_unknown(section, self._fields_of, where, table=self._table)
        return dict(section)


def _toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    # tomllib puts the place at the end of its message, "(at line 3, column 7)"; say it first.
    message = str(exc)
    place = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if place is None:
        return f"not valid TOML: {message}"
    return f"line {place[1]}, column {place[2]}: not valid TOML: {message[: place.start()]}"


def _refuse_unknown(
    data: dict[str, Any],
    settings_cls: type[BaseSettings],
    where: Path,
    *,
    table: str | None = None,
    sections: tuple[str, ...] = (),
) -> None:
    fields = list(settings_cls.model_fields)
    problems = []
    for key in data:
        if key in fields:
            continue
        if key in sections:
            if not isinstance(data[key], dict):
                problems.append(f"{key} must be a table ([{key}] and its lines)")
            continue
        if table is None and isinstance(data[key], dict):
            closest = _closest(key, list(sections))
            hint = f"did you mean [{closest}]?" if closest else f"the tables are: [{'], ['.join(sections)}]"
            problems.append(f"unknown table [{key}] ({hint})")
            continue
        if table is not None and key in Settings.model_fields:
            # TOML puts every line after a [table] header into that table, however it is indented.
            problems.append(f"{key} belongs above the first [table] of the file, not under [{table}]")
            continue
        name = key if table is None else f"[{table}] {key}"
        closest = _closest(key, fields)
        problems.append(f"unknown setting {name}" + (f" (did you mean {closest}?)" if closest else ""))
    if problems:
        raise SettingsError(
            f"{where}: {'; '.join(problems)}",
            remedy="fix or remove it: docs/operations.md lists the settings",
        )


def _refuse_misspelt_variables(settings_cls: type[BaseSettings], table: str | None) -> None:
    """Refuse a SCITI_ variable whose name is a near miss of a setting (SCITI_OPS_DB_URI).

    Other SCITI_ variables are left alone: the prefix is shared (SCITI_USER, SCITI_SECRET_<NAME>,
    and the tables' own prefixes such as SCITI_SSO_), so only a name that looks like one of this
    class's settings is taken for a mistake.
    """
    prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
    fields = [name.upper() for name in settings_cls.model_fields]
    others = [*NOT_SETTINGS, *(f"{prefix}{section.upper()}_*" for section in TOML_SECTIONS if table is None)]
    for variable in sorted(os.environ):
        name = variable.upper()
        if not name.startswith(prefix) or any(fnmatch.fnmatchcase(name, other) for other in others):
            continue
        rest = name[len(prefix) :]
        if rest in fields:
            continue
        closest = _closest(rest, fields, _MISSPELT)
        if closest is not None:
            raise SettingsError(
                f"the environment variable {variable} names no setting (did you mean {prefix}{closest}?)",
                remedy=f"rename it, or unset it (`unset {variable}`)",
            )


def toml_source(settings_cls: type[BaseSettings], table: str | None = None) -> PydanticBaseSettingsSource:
    """The one reader of sciti.toml, for every settings class (``table``: one of its sections).

    It also refuses a SCITI_ environment variable that looks like a misspelt setting of the class,
    as it refuses a misspelt key in the file.
    """
    if table is not None and table not in TOML_SECTIONS:
        raise ValueError(f"add {table!r} to sciti.settings.TOML_SECTIONS, or the file's check refuses it")
    _refuse_misspelt_variables(settings_cls, table)
    return _TomlFile(settings_cls, table)


def _database_url(value: str | None) -> str | None:
    """A URL SCITI can open: SQLite, or PostgreSQL through psycopg 3 (the driver it installs).

    ``postgres://`` (a common spelling, which SQLAlchemy no longer knows) and other databases would
    otherwise fail at first use with a driver traceback. The URL is shown without its password.
    """
    if value is None:
        return None
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"not a database URL: write {_DATABASE_EXAMPLES}") from None
    backend, _, driver = url.drivername.partition("+")
    if (backend, driver) in (("sqlite", ""), ("sqlite", "pysqlite"), ("postgresql", "psycopg")):
        return value
    shown = url.render_as_string(hide_password=True)
    if backend in ("postgres", "postgresql"):
        fixed = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=True)
        raise ValueError(f"{shown}: write {fixed} (SCITI reaches PostgreSQL through psycopg 3)")
    if backend == "sqlite":
        fixed = url.set(drivername="sqlite").render_as_string(hide_password=True)
        raise ValueError(f"{shown}: write {fixed}")
    raise ValueError(
        f"{shown}: SCITI keeps its databases in PostgreSQL or SQLite: write {_DATABASE_EXAMPLES}"
    )


class Settings(BaseSettings):
    # extra="forbid": a misspelt keyword in code is refused too. hide_input_in_errors: a refused
    # database URL may hold a password, and a validation error prints its input otherwise.
    model_config = SettingsConfigDict(env_prefix="SCITI_", extra="forbid", hide_input_in_errors=True)

    home: Path = Field(
        Path("sciti-data"), description="Instance folder: catalog, warehouse, objects, ops DB."
    )
    catalog_uri: str | None = Field(
        None,
        description="SQLAlchemy URL of the Iceberg SQL catalog. Default: SQLite file <home>/catalog.db. "
        "Shared: postgresql+psycopg://user@host/db.",
    )
    warehouse: str | None = Field(None, description="Iceberg warehouse location. Default: <home>/warehouse.")
    ops_db_url: str | None = Field(
        None, description="SQLAlchemy URL of the operational database. Default: SQLite <home>/ops.db."
    )
    object_store: str | None = Field(
        None, description="Content-addressed object store: a folder (default <home>/objects)."
    )
    codelists_dir: Path = Field(
        Path("../shared/data/codelists"),
        description="Folder with the published HS (hs/harmonized-system.csv) and UN/LOCODE code lists.",
    )
    wco_schema_dir: Path = Field(
        Path("../shared/data/wco/schemas"),
        description="Folder with the WCO DEC XML schemas (WCO_DEC_2_DMS.xsd and its imports).",
    )
    edifact_dir: Path = Field(
        Path("../shared/data/edifact"),
        description="Folder with the official UN/EDIFACT directory zips (D.96B, D.16A) from UNECE.",
    )
    connectors_dir: Path = Field(Path("connectors"), description="Folder of connector definitions.")
    drop_dir: Path | None = Field(None, description="Watched drop folder root. Default: <home>/drop.")

    host: str = Field("127.0.0.1", description="Address the API server binds to.")
    port: int = Field(8000, description="Port the API server listens on.")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto headers `sciti serve` "
        "believes: IP addresses or networks (CIDR), comma-separated in SCITI_TRUSTED_PROXIES. Default: "
        "none, so a client's address is always the connection's own and no caller can choose it.",
    )
    token_ttl_minutes: int = Field(480, description="Lifetime of a bearer token.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level: DEBUG, INFO, WARNING, ERROR (any case)."
    )
    log_json: bool = Field(True, description="Structured JSON logs (one object per line) on stderr.")

    buffer_max_rows: int = Field(
        50_000, description="Real-time feeds: flush staged records at this many rows."
    )
    buffer_max_seconds: float = Field(
        5.0, description="Real-time feeds: flush staged records at least this often."
    )
    target_file_rows: int = Field(
        1_000_000, description="Compaction: rewrite data files smaller than this share into bigger ones."
    )
    max_upload_bytes: int = Field(512 * 1024 * 1024, description="Largest file accepted by HTTP push.")

    # Secrets for other systems (decisions 0045-0047, docs/security-secrets.md).
    secrets_backend: Literal["local", "openbao"] = Field(
        "local",
        description="Where connector and service credentials live: 'local' (encrypted in the ops DB) "
        "or 'openbao' (OpenBao / HashiCorp Vault KV v2).",
    )
    secrets_key_file: Path | None = Field(
        None, description="Master key of the local secrets store (0600). Default: <home>/keys/secrets.key."
    )
    secrets_cache_seconds: float = Field(
        30.0, ge=0, description="How long a resolved secret is reused before the store is asked again."
    )
    openbao_url: str = Field("http://127.0.0.1:8200", description="OpenBao / Vault address.")
    openbao_token: SecretStr | None = Field(
        None, description="OpenBao token (prefer SCITI_OPENBAO_TOKEN or openbao_token_file)."
    )
    openbao_token_file: Path | None = Field(None, description="File holding the OpenBao token (0600).")
    openbao_mount: str = Field("secret", description="Mount point of the KV version 2 engine.")
    openbao_prefix: str = Field("sciti", description="Path under the mount where SCITI keeps its secrets.")
    openbao_ca_file: Path | None = Field(None, description="CA bundle to verify the OpenBao TLS certificate.")
    retention_file: Path | None = Field(
        None, description="Retention rules per record kind (YAML). Default: the rules shipped with SCITI."
    )
    retention_every_hours: float = Field(
        24.0, ge=0, description="How often the server runs personal-data retention (0: never; use cron)."
    )
    lake_upkeep_every_hours: float = Field(
        1.0,
        ge=0,
        description="How often the server compacts lake tables and expires old snapshots "
        "(`sciti lake maintain`; 0: never, run it from cron).",
    )
    lake_keep_days: float = Field(
        7.0, ge=0, description="Lake upkeep: time travel reaches this many days back (to the hour)."
    )
    lake_keep_all_hours: float = Field(
        1.0,
        ge=0,
        description="Lake upkeep: every commit of this many last hours is kept; older ones "
        "are thinned to one per hour.",
    )
    # The SQL path's limits (decision 0098): `sciti sql`, POST /api/v1/sql and its export, the web page.
    sql_timeout_seconds: float = Field(
        60.0, gt=0, description="A query over the lake is stopped after this many seconds."
    )
    sql_export_timeout_seconds: float = Field(
        600.0, gt=0, description="An export (CSV or Parquet) is stopped after this many seconds."
    )
    sql_export_max_rows: int = Field(
        1_000_000, ge=1, description="An export of more rows than this is refused (and its file removed)."
    )
    sql_max_answer_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1,
        description="A query's answer (the rows returned, as Arrow data) may hold at most this many "
        "bytes; larger ones are refused (select fewer columns, or export).",
    )
    sql_memory_limit: str = Field(
        "25%",
        pattern=r"(?i)^\s*\d+(\.\d+)?\s*(%|[KMGT]i?B|B)\s*$",
        description="Memory one query may use before it spills to disk (DuckDB memory_limit): "
        "a share of the machine's memory (25%) or a size (4GB, 512MiB).",
    )
    sql_threads: int = Field(
        0, ge=0, description="Threads one query may use; 0: half of the machine's CPUs (at least 1)."
    )
    lake_orphan_days: float = Field(
        3.0,
        ge=0,
        description="Lake upkeep: files no snapshot refers to (a writer stopped between writing "
        "and committing) are removed once this many days old.",
    )
    # The customs administration's money (decision 0111): risk features, their explanations and
    # the rule reasons' {national_currency} and {cash_reporting_threshold} placeholders.
    national_currency: str = Field(
        "HKD",
        description="ISO 4217 code of the national currency, the one amount_national and customs "
        "values are in (any case: eur reads EUR).",
    )
    cash_reporting_threshold: Decimal = Field(
        Decimal("120000"),
        gt=0,
        description="Cash reporting threshold, in the national currency: threshold_ratio and the "
        "near-threshold counts of currency declarations are measured against it.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, toml_source(settings_cls))

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # SCITI_TRUSTED_PROXIES=10.0.0.5,10.0.1.0/24
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        # Written out in one canonical form: uvicorn takes anything it cannot parse (a host name,
        # "10.0.1.5/24") as a literal that never matches, so a typo would fail silently there.
        canonical = []
        for item in value:
            try:
                parsed: Any = (
                    ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)
                )
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or network: list the addresses of your reverse "
                    "proxies, e.g. 10.0.0.5 or 10.0.1.0/24 (never '*': any client could then choose "
                    "the address it is logged and throttled under)"
                ) from None
            canonical.append(str(parsed))
        return canonical

    @field_validator("catalog_uri", "ops_db_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        return _database_url(value)

    @field_validator("national_currency", mode="before")
    @classmethod
    def _iso_4217(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        code = value.strip().upper()
        if pycountry.currencies.get(alpha_3=code) is None:
            raise ValueError(
                f"{value!r} is not an ISO 4217 currency code: write the three letters of your "
                "national currency, e.g. HKD, EUR or KRW"
            )
        return code

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _named_files_exist(self) -> Settings:
        # A file named here is read later (retention by the server's background process, the
        # OpenBao token at a secret's first use): a missing one should stop the start, naming it.
        named = {"retention_file": self.retention_file}
        if self.secrets_backend == "openbao":
            named |= {"openbao_token_file": self.openbao_token_file, "openbao_ca_file": self.openbao_ca_file}
        missing = [
            f"{name} (SCITI_{name.upper()} or sciti.toml) names {path.absolute()}, which is not a file"
            for name, path in named.items()
            if path is not None and not path.is_file()
        ]
        if missing:
            raise ValueError("; ".join(missing))
        return self

    @model_validator(mode="after")
    def _two_sqlite_files(self) -> Settings:
        # SQLite lets one writer at a time per file: batch scoring commits to the catalog while its
        # operational transaction is open (docs/decisions/0074), which on one file waits for itself.
        if (
            self.resolved_catalog_uri.startswith("sqlite")
            and self.resolved_catalog_uri == self.resolved_ops_db_url
        ):
            raise ValueError(
                "catalog_uri and ops_db_url name the same SQLite file: give each its own file "
                "(the defaults do), or put both on PostgreSQL"
            )
        return self

    # Derived locations: one place computes them so no caller rebuilds a path by hand.
    @property
    def resolved_catalog_uri(self) -> str:
        return self.catalog_uri or f"sqlite:///{_absolute(self.home) / 'catalog.db'}"

    @property
    def resolved_warehouse(self) -> str:
        # A plain path, not a file:// URL: pyiceberg does not percent-decode URLs, so a home with a
        # space (as_uri: %20) would put the tables in a second folder named with "%20".
        return self.warehouse or str(_absolute(self.home) / "warehouse")

    @property
    def resolved_ops_db_url(self) -> str:
        return self.ops_db_url or f"sqlite:///{_absolute(self.home) / 'ops.db'}"

    @property
    def resolved_object_store(self) -> Path:
        return Path(self.object_store) if self.object_store else self.home / "objects"

    @property
    def resolved_drop_dir(self) -> Path:
        return self.drop_dir or self.home / "drop"

    @property
    def resolved_secrets_key_file(self) -> Path:
        return self.secrets_key_file or self.home / "keys" / "secrets.key"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings. Tests build their own ``Settings(...)`` and pass it explicitly."""
    return Settings()
