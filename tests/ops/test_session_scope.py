"""``session_scope``: commit on success, roll back on error, and report a failed COMMIT as itself."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from sciti.ops import migrate, session_scope
from sciti.ops.risk_tables import RiskScoringPart


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    migrate(url)
    return url


def parts(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(select(func.count()).select_from(RiskScoringPart)) or 0


def test_an_error_in_the_block_rolls_back(url) -> None:
    with pytest.raises(ValueError, match="refused"), session_scope(url) as session:
        session.add(RiskScoringPart(batch_id="b1", files=[], rows=1))
        session.flush()
        raise ValueError("refused")
    assert parts(url) == 0


def test_a_commit_that_fails_on_its_way_back_raises_its_own_error(url) -> None:
    """The database took the COMMIT and the caller got an error: the caller must see that error
    (to find out what was kept), not a complaint about rolling back a committed session."""

    def answer_lost(session) -> None:
        raise OSError("connection reset as the COMMIT was answered")

    event.listen(Session, "after_commit", answer_lost)
    try:
        with pytest.raises(OSError, match="connection reset"), session_scope(url) as session:
            session.add(RiskScoringPart(batch_id="b1", files=[], rows=1))
    finally:
        event.remove(Session, "after_commit", answer_lost)
    assert parts(url) == 1
