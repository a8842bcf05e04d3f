"""The models API: train (analyst), list and read (anyone with models.read), promote (supervisor)."""

from __future__ import annotations

from sciti.ops import migrate
from tests.api.conftest import assert_envelope, bearer, make_client, token_factory
from tests.conftest import make_settings


def test_train_list_read_promote_over_http(world_lake, tmp_path) -> None:
    s = make_settings(
        world_lake.home,
        ops_db_url=f"sqlite:///{tmp_path / 'ops.db'}",
        object_store=str(tmp_path / "objects"),
        catalog_uri=world_lake.resolved_catalog_uri,
        warehouse=world_lake.resolved_warehouse,
    )
    migrate(s.resolved_ops_db_url)
    tokens = token_factory(s)
    analyst, supervisor = bearer(tokens("analyst")), bearer(tokens("supervisor"))
    with make_client(s) as client:
        made = client.post("/api/v1/models/train", json={"kind": "declaration"}, headers=analyst)
        assert made.status_code == 201, made.text
        version = made.json()["version"]
        assert made.json()["created_by"] == "u-analyst" and made.json()["status"] == "candidate"

        listed = client.get("/api/v1/models", params={"kind": "declaration"}, headers=supervisor).json()
        assert [v["version"] for v in listed] == [version]
        one = client.get(f"/api/v1/models/{version}", headers=supervisor).json()
        assert (
            one["metrics"]["validation"]["metrics"]["roc_auc"] >= 0
            and one["events"][0]["action"] == "trained"
        )

        assert client.post(f"/api/v1/models/{version}/promote", json={}, headers=analyst).status_code == 403
        # ... nor through training: promoting at once needs models.promote too, checked first.
        at_once = {"kind": "declaration", "promote_to": "champion"}
        refused = client.post("/api/v1/models/train", json=at_once, headers=analyst)
        assert_envelope(refused, 403, "forbidden")["details"] == {"permission": "models.promote"}
        still = client.get("/api/v1/models", params={"kind": "declaration"}, headers=supervisor).json()
        assert [v["version"] for v in still] == [version]  # nothing trained, nothing promoted
        promoted = client.post(
            f"/api/v1/models/{version}/promote",
            json={"role": "champion", "reason": "pilot"},
            headers=supervisor,
        )
        assert promoted.status_code == 200 and promoted.json()["status"] == "champion"

        assert_envelope(client.get("/api/v1/models/nope", headers=supervisor), 404, "model_not_found")
        bad = client.post("/api/v1/models/train", json={"kind": "declaration", "label": "x"}, headers=analyst)
        assert bad.status_code == 422


def test_train_on_the_command_line_says_which_source_systems_it_learnt_from(
    world_lake, tmp_path, monkeypatch
) -> None:
    """The analyst is told how many labelled rows came from each source system, and warned when
    their label rates differ (a model can learn the system instead of fraud)."""
    import typer
    from typer.testing import CliRunner

    from sciti.access import create_user
    from sciti.cli import risk_models
    from sciti.ops import session_scope
    from sciti.settings import get_settings

    monkeypatch.setenv("SCITI_HOME", str(world_lake.home))
    monkeypatch.setenv("SCITI_OPS_DB_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    monkeypatch.setenv("SCITI_OBJECT_STORE", str(tmp_path / "objects"))
    monkeypatch.setenv("SCITI_CATALOG_URI", world_lake.resolved_catalog_uri)
    monkeypatch.setenv("SCITI_WAREHOUSE", str(world_lake.resolved_warehouse))
    for name in ("codelists_dir", "wco_schema_dir", "edifact_dir", "connectors_dir"):
        monkeypatch.setenv(f"SCITI_{name.upper()}", str(getattr(world_lake, name)))
    get_settings.cache_clear()
    migrate(get_settings().resolved_ops_db_url)
    with session_scope(get_settings().resolved_ops_db_url) as session:
        create_user(session, "ana", ["analyst"], service=True)
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a group needs a sibling to keep its name
    risk_models.register(app)
    try:
        refused = CliRunner().invoke(app, ["train", "declaration", "--user", "ana", "--promote", "champion"])
        result = CliRunner().invoke(app, ["train", "declaration", "--user", "ana"])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code != 0 and "lacks the models.promote permission" in refused.output
    assert result.exit_code == 0, result.output
    assert "learnt from: demo-clearance " in result.output  # the tiny world's labels: one channel
    assert "differ in their label rates" not in result.output
    kcs, demo = {"rows": 43_576, "label_rate": 0.22}, {"rows": 9_543, "label_rate": 0.5}
    mixed = risk_models.sources_lines({"kcs": kcs, "demo-clearance": demo})
    assert mixed[0] == "learnt from: kcs 43,576 (22% positive), demo-clearance 9,543 (50% positive)"
    assert "differ in their label rates" in mixed[1]
    xml = {"rows": 519, "label_rate": 0.47}
    channels = risk_models.sources_lines({"demo-clearance": demo, "wco-dec": xml})
    assert len(channels) == 1  # two channels of one administration: nothing to warn about
