"""Secrets for other systems over HTTP: metadata only (``secrets.list``); put, rotate, share and
delete (``secrets.manage``). No endpoint ever returns a value: connectors read them in-process."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, SecretStr

from sciti.access import Principal, require
from sciti.access.secrets import NAME, Caller, SecretMeta, SecretsService
from sciti.api.deps import SettingsDep

router = APIRouter(tags=["secrets"])
SecretName = Annotated[str, Path(pattern=NAME.pattern, description="Secret name, e.g. kcs-db.")]


class SecretOut(BaseModel):
    name: str
    version: int = Field(description="Current version.")
    versions: list[int]
    description: str
    shared_with: list[str] = Field(description="Roles (groups) that may manage and read it.")
    created_at: datetime | None
    created_by: str
    updated_at: datetime | None
    updated_by: str
    backend: str

    @classmethod
    def of(cls, meta: SecretMeta) -> SecretOut:
        return cls(
            **{**meta.__dict__, "versions": list(meta.versions), "shared_with": list(meta.shared_with)}
        )


class SecretPut(BaseModel):
    value: SecretStr = Field(min_length=1, description="The value; never returned or logged.")
    description: str | None = Field(None, max_length=500)
    shared_with: list[str] | None = Field(None, description="Roles; default the caller's roles (new secret).")


class SecretRotate(BaseModel):
    value: SecretStr = Field(min_length=1)


class SecretShare(BaseModel):
    roles: list[str] = Field(min_length=1)


def _source(request: Request) -> str:
    return request.client.host if request.client else "api"


@router.get("/secrets", summary="List secrets (metadata only)", response_model=list[SecretOut])
async def list_secrets(
    settings: SettingsDep, principal: Annotated[Principal, Depends(require("secrets.list"))]
) -> list[SecretOut]:
    metas = await run_in_threadpool(lambda: SecretsService(settings).list())
    return [SecretOut.of(m) for m in metas]


@router.get("/secrets/{name}", summary="One secret's metadata (never its value)", response_model=SecretOut)
async def get_secret(
    name: SecretName, settings: SettingsDep, principal: Annotated[Principal, Depends(require("secrets.list"))]
) -> SecretOut:
    return SecretOut.of(await run_in_threadpool(lambda: SecretsService(settings).metadata(name)))


@router.put(
    "/secrets/{name}",
    summary="Create a secret or store a new version",
    response_model=SecretOut,
    status_code=status.HTTP_200_OK,
)
async def put_secret(
    name: SecretName,
    body: SecretPut,
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("secrets.manage"))],
) -> SecretOut:
    def run() -> SecretMeta:
        return SecretsService(settings).put(
            name,
            body.value.get_secret_value(),
            Caller.of(principal),
            description=body.description,
            shared_with=tuple(body.shared_with) if body.shared_with is not None else None,
            source=_source(request),
        )

    return SecretOut.of(await run_in_threadpool(run))


@router.post(
    "/secrets/{name}/rotate", summary="Rotate: a new version of an existing secret", response_model=SecretOut
)
async def rotate_secret(
    name: SecretName,
    body: SecretRotate,
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("secrets.manage"))],
) -> SecretOut:
    def run() -> SecretMeta:
        return SecretsService(settings).rotate(
            name, body.value.get_secret_value(), Caller.of(principal), source=_source(request)
        )

    return SecretOut.of(await run_in_threadpool(run))


@router.put(
    "/secrets/{name}/shared-with", summary="Set the roles a secret is shared with", response_model=SecretOut
)
async def share_secret(
    name: SecretName,
    body: SecretShare,
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("secrets.manage"))],
) -> SecretOut:
    def run() -> SecretMeta:
        return SecretsService(settings).share(
            name, tuple(body.roles), Caller.of(principal), source=_source(request)
        )

    return SecretOut.of(await run_in_threadpool(run))


@router.delete("/secrets/{name}", summary="Delete a secret and all its versions", status_code=204)
async def delete_secret(
    name: SecretName,
    request: Request,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require("secrets.manage"))],
) -> None:
    await run_in_threadpool(
        lambda: SecretsService(settings).delete(name, Caller.of(principal), source=_source(request))
    )
