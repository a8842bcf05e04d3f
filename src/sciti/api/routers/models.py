"""Risk models: list versions, read one (metrics, history), train, promote (champion/challenger).

Training runs in the request (in a worker thread): it suits the data an instance holds for a
demo or a pilot; large lakes train from the CLI (`sciti risk train`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from sciti.access import Principal, demand, require
from sciti.api.deps import SettingsDep
from sciti.risk.features import SUBJECT_KINDS
from sciti.risk.models import get_version, list_versions, promote, train

router = APIRouter(tags=["models"])
Reader = Annotated[Principal, Depends(require("models.read"))]
Trainer = Annotated[Principal, Depends(require("models.train"))]
Promoter = Annotated[Principal, Depends(require("models.promote"))]


class TrainIn(BaseModel):
    kind: str = Field("declaration", description=f"Record kind: one of {', '.join(SUBJECT_KINDS)}.")
    label: str = Field("fraud", pattern="^(fraud|critical)$", description="fraud, or critical (severity 2).")
    since: date | None = Field(None, description="First date of the training window.")
    until: date | None = Field(None, description="End of the training window (excluded).")
    promote_to: str | None = Field(None, pattern="^(champion|challenger)$", description="Promote at once.")


class PromoteIn(BaseModel):
    role: str = Field("champion", pattern="^(champion|challenger|retired)$")
    reason: str = Field("", description="Why: kept in the model's history.")


@router.get("/models", summary="Model versions, newest first")
def versions(
    settings: SettingsDep, _: Reader, kind: Annotated[str | None, Query(description="Record kind.")] = None
) -> list[dict[str, Any]]:
    return list_versions(settings, kind)


@router.get("/models/{version}", summary="One model version: metrics, features, parameters, history")
def version(version: str, settings: SettingsDep, _: Reader) -> dict[str, Any]:
    return get_version(settings, version)


@router.post("/models/train", status_code=201, summary="Train and register a new model version")
async def train_model(body: TrainIn, settings: SettingsDep, who: Trainer) -> dict[str, Any]:
    if body.promote_to:  # checked before the minutes of training, not after
        demand(who, "models.promote")
    return await run_in_threadpool(
        train,
        settings,
        body.kind,
        since=body.since,
        until=body.until,
        label=body.label,
        actor=who.username,
        promote_to=body.promote_to,
    )


@router.post("/models/{version}/promote", summary="Make a version champion, challenger or retired")
def promote_model(version: str, body: PromoteIn, settings: SettingsDep, who: Promoter) -> dict[str, Any]:
    return promote(settings, version, body.role, actor=who.username, reason=body.reason)
