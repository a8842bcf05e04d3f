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
        promoted = client.post(
            f"/api/v1/models/{version}/promote",
            json={"role": "champion", "reason": "pilot"},
            headers=supervisor,
        )
        assert promoted.status_code == 200 and promoted.json()["status"] == "champion"

        assert_envelope(client.get("/api/v1/models/nope", headers=supervisor), 404, "model_not_found")
        bad = client.post("/api/v1/models/train", json={"kind": "declaration", "label": "x"}, headers=analyst)
        assert bad.status_code == 422
