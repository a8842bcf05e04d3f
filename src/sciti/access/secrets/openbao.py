"""Secrets in OpenBao (or HashiCorp Vault): the KV version 2 engine, through ``hvac``.

A secret NAME is the KV path ``<openbao_prefix>/NAME`` under ``openbao_mount``; its value is the
``value`` key of the KV data. Versions are KV versions. Who it is shared with, its description and
who changed it last are KV custom metadata (never the value). OpenBao's own policies decide what
SCITI's token may touch; SCITI's role checks come on top (see service.py).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import hvac
import requests
from hvac import exceptions as bao_errors

from sciti.access.secrets.base import SecretMeta, SecretValue, check_name, check_value
from sciti.access.secrets.errors import SecretNotFound, SecretStoreError
from sciti.settings import Settings

T = TypeVar("T")


def _token(settings: Settings) -> str:
    if settings.openbao_token is not None:
        return settings.openbao_token.get_secret_value()
    path = settings.openbao_token_file
    if path is None:
        raise SecretStoreError(
            "no OpenBao token is configured",
            remedy="set SCITI_OPENBAO_TOKEN or openbao_token_file (a file only the service account reads)",
        )
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise SecretStoreError(
            f"the OpenBao token file {path} is open to group or others", remedy=f"run `chmod 600 {path}`"
        )
    return path.read_text("utf-8").strip()


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    # OpenBao returns nanoseconds ("2026-01-05T08:00:00.123456789Z"); Python keeps microseconds.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6]:0<6}+00:00")


class OpenBaoStore:
    """KV v2 on an OpenBao / Vault server."""

    kind = "openbao"

    def __init__(self, settings: Settings):
        self.url = settings.openbao_url
        self.mount = settings.openbao_mount
        self.prefix = settings.openbao_prefix.strip("/")
        verify: bool | str = str(settings.openbao_ca_file) if settings.openbao_ca_file else True
        self.client = hvac.Client(url=self.url, token=_token(settings), verify=verify, timeout=10)

    def _path(self, name: str) -> str:
        return f"{self.prefix}/{check_name(name)}"

    def _call(self, name: str | None, fn: Callable[[], T]) -> T:
        """Run one OpenBao request, turning its failures into our errors (never echoing a value)."""
        try:
            return fn()
        except bao_errors.InvalidPath:
            raise SecretNotFound(name or "?") from None
        except bao_errors.Forbidden:
            raise SecretStoreError(
                f"OpenBao at {self.url} refused SCITI's token for {self.mount}/{self.prefix}",
                remedy="give the token a policy with create, read, update, delete and list on "
                f"{self.mount}/data/{self.prefix}/* and {self.mount}/metadata/{self.prefix}/*",
            ) from None
        except bao_errors.VaultDown:
            raise SecretStoreError(f"OpenBao at {self.url} is sealed", remedy="unseal it") from None
        except (bao_errors.VaultError, requests.RequestException) as exc:
            raise SecretStoreError(
                f"OpenBao at {self.url} could not be used ({type(exc).__name__})",
                remedy="check openbao_url, that the server is up and that the KV v2 engine is mounted at "
                f"{self.mount}/",
            ) from None

    def _raw_meta(self, name: str) -> dict[str, Any]:
        kv = self.client.secrets.kv.v2
        return self._call(name, lambda: kv.read_secret_metadata(self._path(name), mount_point=self.mount))[
            "data"
        ]

    def get(self, name: str, version: int | None = None) -> SecretValue:
        kv = self.client.secrets.kv.v2
        path = self._path(name)
        reply = self._call(
            name,
            lambda: kv.read_secret_version(
                path, version=version, mount_point=self.mount, raise_on_deleted_version=True
            ),
        )
        data = reply["data"]
        if "value" not in (data.get("data") or {}):
            raise SecretStoreError(
                f"OpenBao secret {self.mount}/{path} has no 'value' key",
                remedy="store it through SCITI (`sciti secrets put`) or add a 'value' key",
            )
        return SecretValue(name, str(data["data"]["value"]), int(data["metadata"]["version"]))

    def _set_custom(self, name: str, updates: dict[str, str]) -> None:
        kv = self.client.secrets.kv.v2
        custom = dict(self._raw_meta(name).get("custom_metadata") or {})
        custom.update(updates)
        self._call(
            name, lambda: kv.update_metadata(self._path(name), custom_metadata=custom, mount_point=self.mount)
        )

    def put(
        self,
        name: str,
        value: str,
        *,
        actor: str,
        description: str | None = None,
        shared_with: tuple[str, ...] | None = None,
    ) -> int:
        check_value(name, value)
        kv = self.client.secrets.kv.v2
        path = self._path(name)
        reply = self._call(
            name, lambda: kv.create_or_update_secret(path, secret={"value": value}, mount_point=self.mount)
        )
        version = int(reply["data"]["version"])
        updates = {"updated_by": actor}
        if version == 1:
            updates["created_by"] = actor
        if description is not None:
            updates["description"] = description
        if shared_with is not None:
            updates["shared_with"] = ",".join(sorted(set(shared_with)))
        self._set_custom(name, updates)
        return version

    def _meta(self, name: str, raw: dict[str, Any]) -> SecretMeta:
        custom = raw.get("custom_metadata") or {}
        live = tuple(
            sorted(
                int(v)
                for v, info in (raw.get("versions") or {}).items()
                if not info.get("destroyed") and not info.get("deletion_time")
            )
        )
        return SecretMeta(
            name=name,
            version=int(raw.get("current_version") or 0),
            versions=live,
            description=custom.get("description", ""),
            shared_with=tuple(r for r in (custom.get("shared_with") or "").split(",") if r),
            created_at=_when(raw.get("created_time")),
            created_by=custom.get("created_by", ""),
            updated_at=_when(raw.get("updated_time")),
            updated_by=custom.get("updated_by", ""),
            backend=self.kind,
        )

    def metadata(self, name: str) -> SecretMeta:
        return self._meta(name, self._raw_meta(name))

    def list(self) -> list[SecretMeta]:
        kv = self.client.secrets.kv.v2
        try:
            keys = self._call(None, lambda: kv.list_secrets(self.prefix, mount_point=self.mount))["data"][
                "keys"
            ]
        except SecretNotFound:
            return []  # nothing stored under the prefix yet
        return [self.metadata(k) for k in sorted(keys) if not k.endswith("/")]

    def share(self, name: str, roles: tuple[str, ...], *, actor: str) -> SecretMeta:
        self._set_custom(name, {"shared_with": ",".join(sorted(set(roles))), "updated_by": actor})
        return self.metadata(name)

    def delete(self, name: str) -> None:
        self.metadata(name)  # SecretNotFound when there is nothing to delete
        kv = self.client.secrets.kv.v2
        self._call(
            name, lambda: kv.delete_metadata_and_all_versions(self._path(name), mount_point=self.mount)
        )


__all__ = ["OpenBaoStore"]
