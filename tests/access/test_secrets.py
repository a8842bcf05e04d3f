"""The local encrypted secrets store and the role-checked, audited service over it (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import select

from sciti.access import list_entries
from sciti.access.secrets import (
    Caller,
    SecretAccessDenied,
    SecretError,
    SecretNotFound,
    SecretsService,
    SecretStoreError,
    forget,
    resolve,
    resolve_value,
)
from sciti.ops import migrate, session_scope
from sciti.ops.privacy_tables import SecretVersion
from tests.conftest import make_settings

VALUE = "s3cr3t-Value-0f-the-kcs-db"
ENGINEER = Caller("erin", ("data_engineer",))
ANALYST = Caller("ann", ("analyst",))
ADMIN = Caller("root", ("administrator",))


@pytest.fixture
def local(settings):
    """The embedded instance (SQLite) with a migrated operational database."""
    migrate(settings.resolved_ops_db_url)
    forget()
    return settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ops(request):
    s = request.getfixturevalue("settings" if request.param == "sqlite" else "pg_settings")
    migrate(s.resolved_ops_db_url)
    forget()
    return s


def test_put_get_rotate_versions_and_metadata(ops):
    svc = SecretsService(ops)
    meta = svc.put("kcs-db", VALUE, ENGINEER, description="KCS replica reader")
    assert (meta.version, meta.versions, meta.shared_with) == (1, (1,), ("data_engineer",))
    assert VALUE not in repr(meta) and VALUE not in repr(svc.backend.get("kcs-db"))
    meta = svc.rotate("kcs-db", "second", ENGINEER)
    assert (meta.version, meta.versions, meta.description) == (2, (1, 2), "KCS replica reader")
    assert svc.backend.get("kcs-db").value == "second"
    assert svc.backend.get("kcs-db", 1).value == VALUE
    assert [m.name for m in svc.list()] == ["kcs-db"]
    svc.delete("kcs-db", ENGINEER)
    with pytest.raises(SecretNotFound):
        svc.metadata("kcs-db")
    with pytest.raises(SecretNotFound):
        svc.rotate("kcs-db", "x", ENGINEER)


def test_values_are_sealed_in_the_database(local):
    ops = local
    svc = SecretsService(ops)
    svc.put("mqtt-pass", VALUE, ENGINEER)
    with session_scope(ops.resolved_ops_db_url) as s:
        row = s.scalars(select(SecretVersion)).one()
        assert VALUE.encode() not in row.sealed_value and VALUE.encode() not in row.wrapped_key
        # A sealed value moved to another version does not open (name and version are bound in).
        svc.put("mqtt-pass", "other", ENGINEER)
        v2 = s.get(SecretVersion, ("mqtt-pass", 2))
    with session_scope(ops.resolved_ops_db_url) as s:
        s.get(SecretVersion, ("mqtt-pass", 2)).sealed_value = row.sealed_value
        s.get(SecretVersion, ("mqtt-pass", 2)).wrapped_key = row.wrapped_key
    with pytest.raises(SecretStoreError, match="does not decrypt"):
        svc.backend.get("mqtt-pass")
    assert v2 is not None


def test_key_file_is_private_and_refused_when_open(settings):
    migrate(settings.resolved_ops_db_url)
    SecretsService(settings).put("a", "b", ADMIN)
    path = settings.resolved_secrets_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    os.chmod(path, 0o644)
    with pytest.raises(SecretStoreError, match="open to group or others"):
        SecretsService(settings)
    os.chmod(path, 0o600)
    assert SecretsService(settings).backend.get("a").value == "b"


def test_another_instance_key_cannot_read(settings, tmp_path):
    migrate(settings.resolved_ops_db_url)
    SecretsService(settings).put("a", VALUE, ADMIN)
    other = make_settings(settings.home, secrets_key_file=tmp_path / "other.key")
    with pytest.raises(SecretStoreError, match="another secrets key"):
        SecretsService(other).backend.get("a")


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [(ENGINEER, True), (ADMIN, True), (ANALYST, False), (Caller("sec", ("security_officer",)), False)],
)
def test_managing_needs_a_role_the_secret_is_shared_with(local, caller, allowed):
    svc = SecretsService(local)
    svc.put("kcs-db", VALUE, ENGINEER)
    actions = [
        lambda: svc.rotate("kcs-db", "v2", caller),
        lambda: svc.share("kcs-db", ("data_engineer", "administrator"), caller),
        lambda: svc.read("kcs-db", caller),
    ]
    for act in actions:
        if allowed:
            act()
        else:
            with pytest.raises(SecretAccessDenied):
                act()


def test_share_widens_who_may_read(local):
    svc = SecretsService(local)
    svc.put("partner-key", VALUE, ENGINEER)
    with pytest.raises(SecretAccessDenied):
        svc.read("partner-key", ANALYST)
    meta = svc.share("partner-key", ("analyst", "data_engineer"), ENGINEER)
    assert meta.shared_with == ("analyst", "data_engineer")
    assert svc.read("partner-key", ANALYST).value == VALUE
    with pytest.raises(SecretError, match="unknown role"):
        svc.share("partner-key", ("nobody",), ENGINEER)


@pytest.mark.parametrize("name", ["", "UPPER", "a b", "../x", "x" * 121])
def test_bad_names_are_refused(settings, name):
    with pytest.raises(SecretError, match="not a valid secret name"):  # refused before any database use
        SecretsService(settings).put(name, VALUE, ADMIN)


def test_every_read_and_change_is_audited_without_the_value(ops):
    svc = SecretsService(ops)
    svc.put("kcs-db", VALUE, ENGINEER)
    svc.rotate("kcs-db", VALUE + "-2", ENGINEER)
    resolve(ops, "kcs-db", actor="connector:kcs")
    with pytest.raises(SecretAccessDenied):
        svc.read("kcs-db", ANALYST)
    with session_scope(ops.resolved_ops_db_url) as s:
        entries = list_entries(s, action="secret.")
    seen = [(e.action, e.actor, e.outcome, e.details.get("version")) for e in reversed(entries)]
    assert seen == [
        ("secret.create", "erin", "ok", 1),
        ("secret.rotate", "erin", "ok", 2),
        ("secret.read", "connector:kcs", "ok", 2),
        ("secret.read", "ann", "denied", None),
    ]
    assert all(e.target == "secret:kcs-db" for e in entries)
    assert not any(VALUE in repr(e) for e in entries)


def test_resolver_caches_briefly_and_sees_rotation(settings, monkeypatch):
    migrate(settings.resolved_ops_db_url)
    forget()
    svc = SecretsService(settings)
    svc.put("kcs-db", "one", ADMIN)
    clock = [1000.0]
    monkeypatch.setattr("sciti.access.secrets.resolver.time.monotonic", lambda: clock[0])
    assert resolve_value(settings, "kcs-db", actor="connector:kcs").version == 1
    svc.backend.put("kcs-db", "two", actor="another-process")  # rotated elsewhere: this cache is stale
    assert resolve(settings, "kcs-db", actor="connector:kcs") == "one"
    clock[0] += settings.secrets_cache_seconds + 1
    assert resolve_value(settings, "kcs-db", actor="connector:kcs").value == "two"


def test_resolver_falls_back_to_the_environment_for_development(settings, monkeypatch):
    migrate(settings.resolved_ops_db_url)
    forget()
    with pytest.raises(SecretNotFound, match="SCITI_SECRET_DEV_ONLY"):
        resolve(settings, "dev-only", actor="connector:x")
    monkeypatch.setenv("SCITI_SECRET_DEV_ONLY", "from-env")
    assert resolve(settings, "dev-only", actor="connector:x") == "from-env"
    with session_scope(settings.resolved_ops_db_url) as s:
        (entry,) = list_entries(s, action="secret.read")
    assert entry.details["origin"] == "environment"


def test_master_key_rotation_rewraps_and_the_old_key_no_longer_opens(local, tmp_path):
    from sciti.access.secrets.local import rotate_master_key

    svc = SecretsService(local)
    svc.put("kcs-db", VALUE, ADMIN)
    svc.rotate("kcs-db", "second", ADMIN)
    old_key = local.resolved_secrets_key_file.read_bytes()
    old_id, new_id, count = rotate_master_key(local)
    assert (count, old_id != new_id) == (2, True)
    assert stat.S_IMODE(local.resolved_secrets_key_file.stat().st_mode) == 0o600
    assert SecretsService(local).backend.get("kcs-db", 1).value == VALUE
    assert SecretsService(local).backend.get("kcs-db").value == "second"
    (tmp_path / "old.key").write_bytes(old_key)
    os.chmod(tmp_path / "old.key", 0o600)
    with pytest.raises(SecretStoreError):
        SecretsService(make_settings(local.home, secrets_key_file=tmp_path / "old.key")).backend.get("kcs-db")
    assert rotate_master_key(local)[2] == 2  # again: a new key, every version re-wrapped
