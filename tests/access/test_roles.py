"""Roles and permissions as data, and the `require` guard's start-up check."""

from __future__ import annotations

import pytest

from sciti.access import AccountError, all_permissions, all_roles, permissions_of, require, validate_roles

ROLES = [
    "viewer",
    "analyst",
    "targeting_officer",
    "supervisor",
    "data_engineer",
    "security_officer",
    "administrator",
    "partner",
    "clearance_system",
    "monitoring",
]


def test_the_roles_of_the_platform_exist():
    assert list(all_roles()) == ROLES


@pytest.mark.parametrize(
    ("roles", "granted", "denied"),
    [
        (["viewer"], {"batches.read"}, {"sql.query", "quarantine.read", "metrics", "users.manage"}),
        (["analyst"], {"batches.read", "sql.query"}, {"quarantine.read", "ingest.push", "users.manage"}),
        (["data_engineer"], {"quarantine.resubmit", "ingest.push", "metrics"}, {"users.manage"}),
        # the administrator runs the platform but does not read intelligence or approve rules
        (
            ["administrator"],
            {"users.manage", "secrets.manage", "audit.read"},
            {"intel.read", "rules.approve"},
        ),
        (["partner"], {"exchange.partner"}, set(all_permissions()) - {"exchange.partner"}),
        (["clearance_system"], {"risk.assess"}, set(all_permissions()) - {"risk.assess"}),
        (["monitoring"], {"metrics"}, set(all_permissions()) - {"metrics"}),
        (["viewer", "monitoring"], {"batches.read", "metrics"}, {"sql.query"}),
        (["no-such-role"], set(), set(all_permissions())),
    ],
)
def test_permissions_of_roles(roles, granted, denied):
    perms = permissions_of(roles)
    assert granted <= perms
    assert not (denied & perms)


@pytest.mark.parametrize(
    ("roles", "ok"),
    [(["analyst"], True), (["analyst", "analyst"], True), ([], False), (["analyst", "wizard"], False)],
)
def test_validate_roles(roles, ok):
    if ok:
        assert validate_roles(roles) == sorted(set(roles))
    else:
        with pytest.raises(AccountError):
            validate_roles(roles)


def test_require_refuses_an_undeclared_permission_at_declaration_time():
    with pytest.raises(ValueError, match="unknown permission 'sql.querry'"):
        require("sql.querry")
    assert callable(require("sql.query"))
