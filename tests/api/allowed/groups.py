"""Role groups the allow table is written with: the roles that hold a permission, read from roles.yaml."""

from __future__ import annotations

from sciti.access import all_roles, permissions_of

EVERYONE = frozenset(all_roles())


def holders(permission: str) -> frozenset[str]:
    """Every role granted ``permission`` (the table still lists endpoints one by one)."""
    return frozenset(r for r in EVERYONE if permission in permissions_of([r]))
