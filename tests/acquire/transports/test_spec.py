"""The transport section of a connector: validation, secrets, redaction."""

from __future__ import annotations

import pytest

from sciti.acquire.transports import (
    FolderSpec,
    MqttSpec,
    SqlSpec,
    TransportConfigError,
    parse_transport,
    redact,
)
from sciti.acquire.transports.spec import secret

SQL = {
    "type": "sql",
    "url": "postgresql+psycopg://u@h/db",
    "table": "t",
    "watermark": "updated_at",
    "tiebreak": "id",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"type": "folder", "path": "kcs"}, FolderSpec),
        ({"type": "folder", "path": "/abs/kcs", "require_marker": True}, FolderSpec),
        (SQL, SqlSpec),
        ({**SQL, "table": None, "query": "SELECT * FROM t WHERE kind = 'a:b'"}, SqlSpec),
        ({"type": "mqtt", "topic": "elock/+/events"}, MqttSpec),
        (None, type(None)),
    ],
)
def test_valid_sections(raw, expected):
    assert isinstance(parse_transport(raw, connector="c"), expected)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"type": "ftp", "path": "x"}, "type"),
        ({"type": "folder"}, "path"),
        ({"type": "folder", "path": "x", "poll_seconds": 0}, "poll_seconds"),
        ({"type": "folder", "path": "x", "colour": "red"}, "colour"),
        ({**SQL, "url_secret": "db"}, "exactly one of url and url_secret"),
        ({**SQL, "query": "SELECT 1"}, "exactly one of table and query"),
        ({**SQL, "table": None, "query": "SELECT * FROM t WHERE updated_at > :watermark"}, "bind parameters"),
        ({**SQL, "watermark": "updated_at; DROP TABLE t"}, "plain SQL identifier"),
        ({"type": "mqtt", "topic": "t", "qos": 3}, "qos"),
    ],
)
def test_invalid_sections_name_the_problem(raw, words):
    with pytest.raises(TransportConfigError) as err:
        parse_transport(raw, connector="c")
    assert words in err.value.message
    assert "docs/transports.md" in err.value.remedy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql+psycopg://sciti:s3cr3t@db:5432/x", "postgresql+psycopg://sciti:***@db:5432/x"),
        (
            "failed: mysql://root:p%40ss@10.0.0.1/db timed out",
            "failed: mysql://root:***@10.0.0.1/db timed out",
        ),
        ("postgresql://sciti@db/x", "postgresql://sciti@db/x"),
        ("no url here", "no url here"),
    ],
)
def test_redact_hides_passwords_in_urls(text, expected):
    assert redact(text) == expected


def test_secret_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SCITI_SECRET_CUSTOMS_DB", "postgresql://u:pw@h/db")
    assert secret("customs-db") == "postgresql://u:pw@h/db"
    with pytest.raises(TransportConfigError) as err:
        secret("missing")
    assert "SCITI_SECRET_MISSING" in err.value.remedy
