"""The audit trail: who did what, when, why and from where — append-only and hash-chained.

Every package records through ``audit(...)`` in the same database session as the action it
records, so the entry commits (or rolls back) with it.

Action names are dotted verbs, e.g. ``login``, ``login.failed``, ``query``, ``export``,
``unmask``, ``rule.create``, ``rule.approve``, ``model.train``, ``model.promote``,
``user.create``, ``secret.read``, ``retention.run``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str = "",
    purpose: str | None = None,
    source: str | None = None,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit trail (within ``session``'s transaction).

    actor: username or service name; target: what was acted on ("rule:R-12", "table:std.passengers");
    purpose: the stated purpose, where one is required; source: client address or "cli".
    Details must never contain secrets or unmasked personal data.
    """
    # Placeholder until the hash-chained store lands (issue 5): the signature is the contract.
    return None


__all__ = ["audit"]
