"""Every SCITI option in one typed, documented class.

Sources, highest first: arguments passed in code, ``SCITI_*`` environment variables, ``sciti.toml``
in the working directory, then the defaults below. Paths that are not absolute are taken relative
to the working directory; everything an instance stores lives under ``home`` unless pointed
elsewhere (a shared deployment points the catalog and operational database at PostgreSQL).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

TOML_FILE = "sciti.toml"


@lru_cache(maxsize=64)
def _resolve(path: Path, cwd: str) -> Path:
    return path.resolve()


def _absolute(path: Path) -> Path:
    """``path.resolve()``, remembered: the operational database's URL is read on every request,
    and resolving walks the file system each time. A relative path is keyed by the working directory."""
    return _resolve(path, "" if path.is_absolute() else str(Path.cwd()))


class _TomlFile(TomlConfigSettingsSource):
    """sciti.toml in the working directory: the whole file, or one table of it (``[sso]``)."""

    def __init__(self, settings_cls: type[BaseSettings], table: str | None = None):
        self._table = table
        super().__init__(settings_cls, toml_file=TOML_FILE, toml_table_header=())

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        data = super()._read_file(file_path)
        if self._table is None:
            return data
        section = data.get(self._table)
        return dict(section) if isinstance(section, dict) else {}  # absent table: nothing


def toml_source(settings_cls: type[BaseSettings], table: str | None = None) -> PydanticBaseSettingsSource:
    """The one reader of sciti.toml, for every settings class (``table``: one of its sections)."""
    return _TomlFile(settings_cls, table)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCITI_", extra="ignore")

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
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR.")
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
    lake_orphan_days: float = Field(
        3.0,
        ge=0,
        description="Lake upkeep: files no snapshot refers to (a writer stopped between writing "
        "and committing) are removed once this many days old.",
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
