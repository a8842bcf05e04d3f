"""One instance for the web tests: KCS declarations through their connector, approved rules, a
trained model, scored records in the queue, and people with passwords (one with MFA).

``live_server`` serves it over real HTTP on loopback (uvicorn in a thread) for the browser tests.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
import uvicorn
from fastapi.testclient import TestClient

from sciti.access import create_user, load_instance_key
from sciti.access.mfa import confirm, enrol
from sciti.api.app import create_app
from sciti.ops import Batch, QuarantineRecord, User, session_scope
from sciti.risk import features
from sciti.risk.engine import Assessor, score_since
from sciti.settings import Settings
from tests.risk.engine.conftest import build_instance, train_model, with_model

PASSWORD = "Lantern-Orbit-Quarry-42"
# username -> roles; every one logs in with PASSWORD ("ana" also with a one-time code)
PEOPLE = {
    "ana": ["analyst"],
    "tom": ["targeting_officer"],
    "sue": ["supervisor"],
    "dee": ["data_engineer"],
    "vic": ["viewer"],
    "adam": ["administrator"],
    "sec": ["security_officer"],
}
ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "artifacts" / "web"  # git-ignored: screenshots of each main page


@dataclass
class WebWorld:
    settings: Settings
    totp_secret: str  # ana's authenticator secret


@pytest.fixture(scope="session")
def web_world(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> WebWorld:
    s = build_instance(tmp_path_factory.mktemp("web") / "instance", shared_data)
    model = train_model(s, features.load_reference(s))
    assessor = with_model(Assessor.load(s, kinds=("declaration",)), model)
    score_since(s, "declaration", assessor=assessor)
    key = load_instance_key(s.home)
    with session_scope(s.resolved_ops_db_url) as session:
        for name, roles in PEOPLE.items():
            create_user(session, name, roles, password=PASSWORD, display_name=name.title())
        ana = session.query(User).filter_by(username="ana").one()
        secret = enrol(session, ana, key).secret
        # Confirm with the previous step's code, so the current step is still free for a login.
        earlier = datetime.now(UTC) - timedelta(seconds=30)
        confirm(session, ana, key, pyotp.TOTP(secret).at(earlier), datetime.now(UTC))
    return WebWorld(s, secret)


@pytest.fixture(scope="session")
def web_settings(web_world: WebWorld) -> Settings:
    return web_world.settings


def login_csrf(client: TestClient) -> str:
    """Open the login page (it sets the login-CSRF cookie) and return the token its form carries."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/ui/login").text)
    assert found, "the login form carries no anti-CSRF token"
    return found.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD, totp: str = "") -> TestClient:
    form = {"username": username, "password": password, "totp": totp, "csrf_token": login_csrf(client)}
    response = client.post("/ui/login", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture(scope="session")
def web_app(web_settings: Settings):
    return create_app(web_settings)


@pytest.fixture(scope="session")
def as_user(web_app) -> Iterator:
    """``as_user("tom")``: a logged-in TestClient (one per person, kept for the session)."""
    made: dict[str, TestClient] = {}

    def make(name: str) -> TestClient:
        if name not in made:
            made[name] = login(TestClient(web_app, raise_server_exceptions=False), name)
        return made[name]

    yield make
    for c in made.values():
        c.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(web_settings: Settings) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(create_app(web_settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def quarantined(web_settings) -> int:
    """A record of the web instance in quarantine (KCS has none), with its batch."""
    now = datetime.now(UTC)
    with session_scope(web_settings.resolved_ops_db_url) as s:
        s.add(
            Batch(
                id="i18n-batch",
                connector="kcs",
                source="kcs",
                unit="late.csv",
                fingerprint="i18n",
                status="committed",
                received=1,
                stored=0,
                quarantined=1,
                started_at=now,
                finished_at=now,
            )
        )
        s.flush()
        row = QuarantineRecord(
            batch_id="i18n-batch",
            connector="kcs",
            source="kcs",
            locator="late.csv:line 2",
            field="net_mass_kg",
            reason="net_mass_kg: '-5' is less than 0, the smallest allowed",
            raw="declaration_id,net_mass_kg\nD1,-5\n",
            details={"problems": [{"field": "net_mass_kg", "reason": "less than 0"}]},
        )
        s.add(row)
        s.flush()
        return row.id
