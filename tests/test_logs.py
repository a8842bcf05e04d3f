"""Structured JSON logs with request ids, and redaction of secrets."""

from __future__ import annotations

import io
import json
import logging

import pyarrow as pa
import pytest

from sciti.logs import REDACTED, redact, request_id_var, setup_logging

TOKEN = "sciti_" + "Q" * 20 + "-_" + "z" * 21


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"issued {TOKEN} to alice", TOKEN),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("header basic YWRtaW46c2VjcmV0cGFzcw==", "YWRtaW46c2VjcmV0cGFzcw=="),
        ("hash $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA stored", "$argon2id$v=19"),
        ("connect postgresql+psycopg://sciti:s3cr3t-pw@db:5432/ops", "s3cr3t-pw"),
        ("password=hunter2hunter2 next", "hunter2hunter2"),
        ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
        ("new_password: 'tr0ub4dor&3'", "tr0ub4dor&3"),
        ("api_key=AKIAEXAMPLE123&x=1", "AKIAEXAMPLE123"),
        ("client_secret = 'xyz-123-abc'", "xyz-123-abc"),
    ],
)
def test_redact_removes_secrets(text, secret):
    out = redact(text)
    assert secret not in out and REDACTED in out


@pytest.mark.parametrize(
    "text", ["GET /api/v1/batches 200", "batch b1: 98 stored, 2 quarantined", "user alice"]
)
def test_redact_leaves_ordinary_text(text):
    assert redact(text) == text


@pytest.fixture
def captured(settings):
    stream = io.StringIO()
    handler = setup_logging(settings, stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_request_id_and_fields(captured):
    log = logging.getLogger("sciti.test")
    token = request_id_var.set("req-42")
    try:
        log.info("hello %s", "world", extra={"batch_id": "b1", "rows": 3})
    finally:
        request_id_var.reset(token)
    log.warning("no request here")
    first, second = _lines(captured)
    assert first["message"] == "hello world" and first["level"] == "INFO" and first["logger"] == "sciti.test"
    assert first["request_id"] == "req-42" and first["batch_id"] == "b1" and first["rows"] == 3
    assert "request_id" not in second


def test_secrets_in_messages_fields_and_tracebacks_are_redacted(captured):
    log = logging.getLogger("sciti.test")
    log.info(
        "login with password=%s",
        "hunter2hunter2",
        extra={"token": TOKEN, "password": "p@ss-word-1", "rows": 5, "context": {"api_key": "k-123456"}},
    )
    try:
        raise ValueError(f"could not use {TOKEN}")
    except ValueError:
        log.exception("failed")
    text = captured.getvalue()
    for secret in ("hunter2hunter2", TOKEN, "p@ss-word-1", "k-123456"):
        assert secret not in text
    first, second = _lines(captured)
    assert first["token"] == REDACTED and first["rows"] == 5 and first["context"] == {"api_key": REDACTED}
    assert "ValueError" in second["exc"] and REDACTED in second["exc"]


def test_api_logs_name_the_user_and_never_the_secrets(captured, settings):
    from fastapi.testclient import TestClient

    from sciti.access import create_user
    from sciti.api.app import create_app
    from sciti.ops import migrate, session_scope

    migrate(settings.resolved_ops_db_url)
    password = "harbour-lantern-quietly-7"
    with session_scope(settings.resolved_ops_db_url) as s:
        create_user(s, "alice", ["analyst"], password=password)
    client = TestClient(create_app(settings))
    client.post("/api/v1/auth/token", json={"username": "alice", "password": "wrong-" + password})
    token = client.post("/api/v1/auth/token", data={"username": "alice", "password": password}).json()[
        "access_token"
    ]
    client.get(f"/api/v1/me?access_token={token}", headers={"Authorization": f"Bearer {token}"})
    text = captured.getvalue()
    assert password not in text and token not in text
    access = [e for e in _lines(captured) if e["logger"] == "sciti.api.access"]
    assert [(e["path"], e["status"]) for e in access] == [
        ("/api/v1/auth/token", 401),
        ("/api/v1/auth/token", 200),
        ("/api/v1/me", 200),
    ]
    assert access[-1]["user"] == "alice" and access[-1]["request_id"]


def test_loading_a_lake_table_does_not_log_at_info(captured, tmp_path):
    """pyiceberg's per-table "Defaulting to PyArrow FileIO" stays out of the operator's log."""
    from sciti.lake import open_lake

    lake = open_lake(f"sqlite:///{tmp_path}/catalog.db", str(tmp_path / "warehouse"))
    lake.ensure_table("std.t", pa.schema([("a", pa.int64())]))
    lake.table("std.t")
    assert not [line for line in _lines(captured) if line["logger"].startswith("pyiceberg")]
