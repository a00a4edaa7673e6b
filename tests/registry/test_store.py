"""The registry on the real BentoML model store in a temporary BENTOML_HOME."""

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from augrec.errors import RegistryError
from augrec.registry.aliases import AliasBook


def test_register_list_get_and_load(registry, runs):
    v, created = registry.register(runs["itemknn"])
    assert created and v.tag.startswith("augrec-shop-itemknn:")
    assert {p.name for p in v.path.iterdir()} >= {
        "model.yaml",
        "manifest.json",
        "metrics.json",
        "model.pt",
        "config.json",
    }
    assert v.labels["managed-by"] == "augrec" and v.labels["gate"] == "none"
    assert v.metadata["test"]["ndcg@10"] == v.metrics["test"]["ndcg@10"]
    assert v.manifest == json.loads((runs["itemknn"] / "manifest.json").read_text())
    assert v.verify() == []
    # every way of naming it finds it
    for ref in (
        v.tag,
        v.version,
        v.version[:6],
        "augrec-shop-itemknn",
        f"{v.name}:{v.version[:6]}",
    ):
        assert registry.get(ref).tag == v.tag
    p, _ = registry.register(runs["popularity"])
    assert [x.tag for x in registry.versions()] == [v.tag, p.tag]
    model, item_ids = registry.get(v.tag).load()
    assert model.name == "itemknn" and item_ids[0] == -1


def test_versions_are_immutable_and_registering_twice_is_idempotent(registry, runs):
    import bentoml
    from bentoml.exceptions import BentoMLException

    v, _ = registry.register(runs["itemknn"])
    again, created = registry.register(runs["itemknn"])
    assert not created and again.tag == v.tag
    assert len(registry.versions()) == 1
    # BentoML itself refuses to write over an existing tag
    with pytest.raises(BentoMLException, match="already exists"):
        with bentoml.models.create(v.tag, _model_store=registry._store) as ref:
            with open(ref.path_of("model.pt"), "wb") as fh:
                fh.write(b"another model")
    assert registry.get(v.tag).verify() == []


def test_a_changed_file_is_caught_before_it_is_served(registry, runs):
    v, _ = registry.register(runs["popularity"])
    model_file = v.path / "model.pt"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    assert registry.get(v.tag).verify() == ["model.pt changed since registration (sha256 differs)"]
    with pytest.raises(RegistryError, match="integrity"):
        registry.get(v.tag).load()
    with pytest.raises(RegistryError, match="integrity"):
        registry.promote(v.tag)
    assert registry.aliases.get("production") is None


def test_promote_rollback_and_unknown_versions(registry, runs):
    a, _ = registry.register(runs["popularity"])
    b, _ = registry.register(runs["itemknn"])
    with pytest.raises(RegistryError, match="no alias, model or version"):
        registry.promote("nosuchversion")
    _, event = registry.promote(a.tag)
    assert event["from"] is None
    registry.promote(b.version, note="beats popularity")
    assert registry.get("production").tag == b.tag
    assert registry.aliases_of(b.tag) == ["production"]
    registry.promote(a.tag, alias="staging")
    v, event = registry.rollback()
    assert v.tag == a.tag and event["from"] == b.tag
    assert registry.get("staging").tag == a.tag
    with pytest.raises(RegistryError, match="no previous version"):
        registry.rollback()


def test_rollback_refuses_a_version_that_was_deleted(registry, runs):
    import bentoml

    a, _ = registry.register(runs["popularity"])
    b, _ = registry.register(runs["itemknn"])
    registry.promote(a.tag)
    registry.promote(b.tag)
    bentoml.models.delete(a.tag, _model_store=registry._store)
    with pytest.raises(RegistryError):
        registry.rollback()
    assert registry.get("production").tag == b.tag


def test_concurrent_promotes_through_the_registry_stay_consistent(registry, runs):
    tags = [registry.register(runs[n])[0].tag for n in ("popularity", "itemknn", "sasrec0")]

    def worker(w):
        for i in range(6):
            registry.promote(tags[(w + i) % len(tags)])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = AliasBook(registry.aliases.path).read()["aliases"]["production"]
    hist = state["history"]
    assert all(after["from"] == before["to"] for before, after in zip(hist, hist[1:], strict=False))
    assert state["tag"] == hist[-1]["to"] and state["tag"] in tags


def test_a_promote_killed_at_the_rename_keeps_production(registry, runs, monkeypatch):
    a, _ = registry.register(runs["popularity"])
    b, _ = registry.register(runs["itemknn"])
    registry.promote(a.tag)
    real_replace = os.replace

    def crash(src, dst):
        if str(dst).endswith("aliases.json"):
            raise KeyboardInterrupt  # the process is being stopped at the worst moment
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.promote(b.tag)
    monkeypatch.setattr(os, "replace", real_replace)
    assert registry.get("production").tag == a.tag
    assert len(registry.aliases.read()["aliases"]["production"]["history"]) == 1


def test_export_and_import_through_a_folder_and_a_file_uri(registry, runs, tmp_path):
    from augrec.registry.store import Registry

    v, _ = registry.register(runs["itemknn"])
    registry.promote(v.tag)
    written = registry.export("production", str(tmp_path / "exports"))
    assert written.endswith(f"{v.name}-{v.version}.bentomodel")
    via_uri = registry.export(v.tag, f"file://{tmp_path / 'by-uri'}")
    assert os.path.exists(via_uri)

    other = Registry(tmp_path / "cluster-home")
    imported, created = other.import_(f"file://{written}")
    assert created and imported.tag == v.tag
    assert imported.verify() == [] and imported.manifest["run_id"] == v.manifest["run_id"]
    assert other.aliases.current() == {}  # aliases stay with the registry they were set in
    again, created = other.import_(via_uri)
    assert not created and again.tag == v.tag
    model, _ = other.get(v.version).load()
    assert model.name == "itemknn"


def test_import_refuses_a_different_model_under_an_existing_tag(registry, runs, tmp_path):
    from augrec.registry.store import Registry

    v, _ = registry.register(runs["itemknn"])
    written = registry.export(v.tag, str(tmp_path / "exports"))
    other = Registry(tmp_path / "other")
    here, _ = other.import_(written)
    (here.path / "metrics.json").write_text("{}")
    model_yaml = here.path / "model.yaml"
    model_yaml.write_text(model_yaml.read_text().replace(v.metadata["files"]["model.pt"], "0" * 64))
    with pytest.raises(RegistryError, match="different files"):
        other.import_(written)


def test_register_refuses_what_is_not_a_run(registry, runs, tmp_path):
    with pytest.raises(RegistryError, match="missing manifest.json"):
        registry.register(tmp_path)
    old = tmp_path / "old-run"
    shutil.copytree(runs["popularity"], old)
    (old / "manifest.json").unlink()
    with pytest.raises(RegistryError, match="trained again"):
        registry.register(old)


@pytest.mark.e2e
def test_bentoml_cli_sees_the_same_models(registry, runs, home):
    v, _ = registry.register(runs["itemknn"])
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "bentoml"), "models", "list", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BENTOML_HOME": str(home)},
    )
    assert out.returncode == 0, out.stderr
    assert v.tag in {m["tag"] for m in json.loads(out.stdout)}


def test_a_feature_contract_recorded_after_training_travels_with_the_version(
    registry, runs, tmp_path
):
    from augrec.registry.manifest import features_summary

    run = tmp_path / "run"
    shutil.copytree(runs["itemknn"], run)
    contract = {
        "format": "augrec.features/1",
        "project": "augrec",
        "services": [{"name": "recommender_v1", "fingerprint": "ab" * 32, "definition": {}}],
    }
    (run / "features.json").write_text(json.dumps(contract))
    v, _ = registry.register(run)
    assert v.features == contract and "features.json" in v.metadata["files"]
    assert features_summary(v.features)["services"][0]["name"] == "recommender_v1"
