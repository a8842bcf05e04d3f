"""Dependencies routers share: settings, the lake, an operational-DB session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel
from sqlalchemy.orm import Session

from sciti.access import Principal, current_principal
from sciti.lake import Lake, open_lake
from sciti.ops import session_scope
from sciti.settings import Settings


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with (``create_app(settings)``).

    Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency on a
    worker thread, and those hops cost real-time endpoints more than the work itself.
    """
    return request.app.state.settings


def get_lake(settings: Annotated[Settings, Depends(get_settings)]) -> Lake:
    return open_lake(settings.resolved_catalog_uri, settings.resolved_warehouse)


def db_session(settings: Annotated[Settings, Depends(get_settings)]) -> Iterator[Session]:
    """A session committed when the endpoint returns, rolled back if it raises."""
    with session_scope(settings.resolved_ops_db_url) as session:
        yield session


class Paging(BaseModel):
    limit: int
    offset: int


async def paging(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=10**12, description="Items to skip.")] = 0,
) -> Paging:
    return Paging(limit=limit, offset=offset)


SettingsDep = Annotated[Settings, Depends(get_settings)]
# A row number in a path: row numbers are 32-bit integers; beyond that the database refuses to
# even compare with it (a 500), so such a number is a 422 here.
RowId = Annotated[int, Path(ge=0, le=2**31 - 1, description="Row number.")]
LakeDep = Annotated[Lake, Depends(get_lake)]
# scope="function": commit before the response is sent. With the default ("request") the commit
# runs after the client has its answer, so a client's next request could miss the write, and a
# failed commit would follow a 200.
SessionDep = Annotated[Session, Depends(db_session, scope="function")]
PagingDep = Annotated[Paging, Depends(paging)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
