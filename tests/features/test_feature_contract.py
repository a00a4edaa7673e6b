"""The feature-version contract: a model records its services' fingerprints, and
`augrec features check` fails when the store's definitions changed under the same name."""

import json

import pytest
from feature_helpers import copy_feature_repo, invoke

from augrec.errors import ConfigError
from augrec.features import contract

V2_VIEW = """

user_history_v2 = FeatureView(
    name="user_history_v2",
    entities=[user],
    ttl=timedelta(days=365),
    schema=[Field(name=spec.HISTORY_ITEMS, dtype=Array(Int64))],
    source=user_history_push,
    tags={"history_length": str(spec.HISTORY_LENGTH)},
)
"""
V2_SERVICE = """
from views import user_history_v2

recommender_v2 = FeatureService(name="recommender_v2", features=[user_history_v2, user_activity])
"""


def _cli(*args, repo):
    return invoke("features", *args, "--repo", str(repo))


@pytest.fixture
def applied_repo(tmp_path, fs_local_store):  # fs_local_store: Feast already imported
    repo = copy_feature_repo(tmp_path / "feature_repo")
    result = _cli("apply", repo=repo)
    assert result.exit_code == 0, result.output
    return repo


def test_a_changed_definition_without_a_new_version_fails_the_check(applied_repo, tmp_path):
    repo = applied_repo
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")

    recorded = _cli("record", "--out", str(run), repo=repo)
    assert recorded.exit_code == 0, recorded.output
    doc = json.loads((run / "features.json").read_text())
    assert [s["name"] for s in doc["services"]] == ["recommender_v1"]
    assert len(doc["services"][0]["fingerprint"]) == 64

    ok = _cli("check", "--model", str(run), repo=repo)
    assert ok.exit_code == 0 and "ok: recommender_v1" in ok.output

    # Edit what recommender_v1 serves (a feature's type) and keep the service name.
    views = repo / "views.py"
    views.write_text(
        views.read_text().replace(
            'Field(name="event_count", dtype=Int64', 'Field(name="event_count", dtype=Float64'
        )
    )
    # CI catches it before apply (repo files) ...
    before = _cli("check", "--model", str(run), "--against", "repo", repo=repo)
    assert before.exit_code == 1
    # ... and serving catches it after (the registry), naming the change.
    assert _cli("apply", repo=repo).exit_code == 0
    after = _cli("check", "--model", str(run / "features.json"), repo=repo)
    assert after.exit_code == 1
    for text in (before.output, after.output):
        assert "recommender_v1" in text and "without a new version" in text
        assert "user_activity: feature event_count type Int64 -> Float64" in text


def test_a_new_version_leaves_old_models_valid(applied_repo, tmp_path):
    repo = applied_repo
    contract_file = tmp_path / "contract.json"
    assert _cli("record", "--out", str(contract_file), repo=repo).exit_code == 0

    # The right way: a new view and a new service; recommender_v1 is untouched.
    (repo / "views.py").write_text((repo / "views.py").read_text() + V2_VIEW)
    (repo / "services.py").write_text((repo / "services.py").read_text() + V2_SERVICE)
    # Descriptions are documentation, not definitions: editing one breaks nothing.
    views = repo / "views.py"
    views.write_text(views.read_text().replace("How active the user", "How busy the user"))
    assert _cli("apply", repo=repo).exit_code == 0

    assert _cli("check", "--model", str(contract_file), repo=repo).exit_code == 0
    new = tmp_path / "new.json"
    assert (
        _cli("record", "--out", str(new), "--service", "recommender_v2", repo=repo).exit_code == 0
    )
    assert _cli("check", "--model", str(new), repo=repo).exit_code == 0


def test_removed_service_and_missing_contract_are_reported(applied_repo, tmp_path):
    repo = applied_repo
    doc = {
        "format": contract.FORMAT,
        "project": "augrec",
        "services": [
            {"name": "recommender_v0", "fingerprint": "0" * 64, "definition": {"views": []}}
        ],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    result = _cli("check", "--model", str(path), repo=repo)
    assert result.exit_code == 1 and "'recommender_v0' no longer exists" in result.output

    missing = _cli("check", "--model", str(tmp_path), repo=repo)
    assert isinstance(missing.exception, ConfigError)
    assert "features.json" in str(missing.exception)


def test_fingerprint_is_canonical():
    a = {"service": "s", "views": [{"name": "v", "features": {"x": "Int64", "y": "String"}}]}
    b = {"views": [{"features": {"y": "String", "x": "Int64"}, "name": "v"}], "service": "s"}
    assert contract.fingerprint(a) == contract.fingerprint(b)
    c = {"service": "s", "views": [{"name": "v", "features": {"x": "Int32", "y": "String"}}]}
    assert contract.fingerprint(a) != contract.fingerprint(c)
    assert contract.diff(
        {"views": [{"name": "v", "features": {"x": "Int64"}, "tags": {"w": "50"}}]},
        {"views": [{"name": "v", "features": {"x": "Int64", "z": "String"}, "tags": {"w": "20"}}]},
    ) == ["view v: feature z added (String)", "view v: tag w '50' -> '20'"]
