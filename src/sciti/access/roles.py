"""Roles and their permissions, loaded from data/roles.yaml and checked once at import."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from sciti.access.errors import AccountError


@dataclass(frozen=True)
class RoleMap:
    """Declared permissions (name -> meaning) and roles (name -> permissions granted)."""

    permissions: dict[str, str]
    roles: dict[str, frozenset[str]]
    descriptions: dict[str, str]


@lru_cache(maxsize=1)
def role_map() -> RoleMap:
    text = resources.files("sciti.access").joinpath("data/roles.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    permissions = {str(k): str(v) for k, v in raw["permissions"].items()}
    roles: dict[str, frozenset[str]] = {}
    descriptions: dict[str, str] = {}
    for name, spec in raw["roles"].items():
        granted = frozenset(spec.get("permissions") or [])
        unknown = granted - permissions.keys()
        if unknown:  # a typo in the data file must not silently grant or drop access
            raise ValueError(f"roles.yaml: role {name!r} grants undeclared permissions {sorted(unknown)}")
        roles[name] = granted
        descriptions[name] = spec.get("description", "")
    return RoleMap(permissions, roles, descriptions)


def all_roles() -> tuple[str, ...]:
    return tuple(role_map().roles)


def all_permissions() -> tuple[str, ...]:
    return tuple(role_map().permissions)


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    """Union of the permissions of ``roles``; unknown role names grant nothing."""
    granted = role_map().roles
    return frozenset().union(*(granted.get(r, frozenset()) for r in roles))


def validate_roles(roles: Iterable[str]) -> list[str]:
    """Return the roles as a sorted list, or raise AccountError naming the unknown ones."""
    roles = sorted(set(roles))
    unknown = [r for r in roles if r not in role_map().roles]
    if unknown:
        raise AccountError(
            f"unknown role(s): {', '.join(unknown)}", remedy=f"use one of: {', '.join(all_roles())}"
        )
    if not roles:
        raise AccountError(
            "an account needs at least one role", remedy=f"use one of: {', '.join(all_roles())}"
        )
    return roles


def check_permission_name(permission: str) -> str:
    if permission not in role_map().permissions:
        raise ValueError(f"unknown permission {permission!r}; declared: {', '.join(all_permissions())}")
    return permission
