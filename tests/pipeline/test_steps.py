"""Each kfp component through its `python_func`: the step it wraps, on tiny data, no kfp run."""

import json
from pathlib import Path

import pytest
from kfp import dsl
from pipeline_helpers import KNN, new_feature_repo

from augrec import rundir
from augrec.errors import ConfigError, DataValidationError


def art(cls, path: Path):
    """A kfp artifact whose local path is `path` (what the executor hands a component)."""
    return cls(name=path.name, uri=str(path))


@pytest.fixture(scope="module")
def built(shop, tmp_path_factory):
    """ingest -> features -> train -> select -> gate, once, through the components."""
    from augrec.components import data, release, training

    root = tmp_path_factory.mktemp("steps")
    ds = art(dsl.Dataset, root / "dataset")
    data.ingest.python_func(data=str(shop), data_fingerprint="", dataset=ds)
    repo = new_feature_repo(root / "feature_repo")
    contract = art(dsl.Artifact, root / "contract")
    fp = data.features.python_func(
        dataset=ds, repo=str(repo), env="local", service="recommender_v1", contract=contract
    )
    source = {"repo": str(repo), "env": "local", "service": "recommender_v1", "fingerprint": fp}
    model, metrics = art(dsl.Model, root / "model"), art(dsl.Metrics, root / "metrics")
    training.train.python_func(
        dataset=ds, model_name="itemknn", config=KNN, seed=0, features=source, ray={},
        model=model, metrics=metrics,
    )  # fmt: skip
    chosen = art(dsl.Model, root / "chosen")
    selection = training.select.python_func(baseline=model, method="none", model=chosen)
    gated, checks = art(dsl.Model, root / "gated"), art(dsl.Metrics, root / "checks")
    passed = release.gate.python_func(
        candidate=chosen, dataset=ds, home=str(root / "bentoml"), config={}, gated=gated,
        checks=checks,
    )  # fmt: skip
    return dict(
        root=root, ds=ds, repo=repo, contract=contract, fp=fp, model=model, metrics=metrics,
        chosen=chosen, selection=selection, gated=gated, passed=passed, checks=checks,
        source=source,
    )  # fmt: skip


def test_ingest_keeps_the_files_and_their_fingerprint(built, shop):
    from augrec.data.loaders import load_dataset
    from augrec.registry.manifest import fingerprint_files
    from augrec.steps import DATASET_INFO, dataset_path

    info = json.loads((Path(built["ds"].path) / DATASET_INFO).read_text())
    original = fingerprint_files(load_dataset(shop).files)["fingerprint"]
    assert info["fingerprint"] == original == built["ds"].metadata["fingerprint"]
    assert load_dataset(dataset_path(built["ds"].path)).name == "shop"


def test_ingest_refuses_bad_data_and_writes_nothing(tmp_path):
    from augrec.components import data

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\n1,x,10\n")
    out = tmp_path / "dataset"
    with pytest.raises(DataValidationError, match="item_id"):
        data.ingest.python_func(data=str(bad), data_fingerprint="", dataset=art(dsl.Dataset, out))
    assert not out.exists()


def test_ingest_refuses_data_changed_since_submission(shop, tmp_path):
    from augrec.components import data

    with pytest.raises(ConfigError, match="changed since the run was submitted"):
        data.ingest.python_func(
            data=str(shop), data_fingerprint="sha256:0", dataset=art(dsl.Dataset, tmp_path / "d")
        )


def test_features_record_the_service_the_run_trains_on(built):
    doc = json.loads((Path(built["contract"].path) / rundir.FEATURES).read_text())
    assert [s["name"] for s in doc["services"]] == ["recommender_v1"]
    assert doc["services"][0]["fingerprint"] == built["fp"]


def test_train_reads_from_feast_and_records_the_contract(built):
    run = Path(built["model"].path)
    assert rundir.missing_files(run) == []
    manifest = rundir.read_json(run, rundir.MANIFEST)
    assert manifest["features"]["services"][0]["fingerprint"] == built["fp"]
    assert built["model"].metadata["test_ndcg@10"] == rundir.read_metrics(run)["test"]["ndcg@10"]
    logged = built["metrics"].metadata
    assert logged["valid_ndcg@10"] > 0 and "test_hr@10" in logged


def test_train_builds_the_search_index_of_its_own_catalog(built, shop):
    import pandas as pd

    from augrec.search.index import SearchIndex

    run = Path(built["model"].path)
    _, item_ids = rundir.load_model(run, device="cpu")
    index = SearchIndex.load(run / rundir.SEARCH_INDEX, item_ids)  # refuses another catalog
    titles = pd.read_parquet(shop / "items.parquet").set_index("item_id")["title"]
    assert index.catalog.titles[1:] == titles.reindex(item_ids[1:]).tolist()
    # registered with the model: the registry copies every present run file
    assert rundir.SEARCH_INDEX in rundir.present_files(run)


def test_a_changed_catalog_gets_a_new_index_when_the_pipeline_retrains(shop, tmp_path):
    import pandas as pd

    from augrec.search.index import IndexMismatch, SearchIndex
    from augrec.steps import ingest, source_fingerprint, train

    changed = tmp_path / "shop"
    changed.mkdir()
    inter = pd.read_parquet(shop / "interactions.parquet")
    items = pd.read_parquet(shop / "items.parquet")
    gone = int(inter["item_id"].iloc[0])
    inter[inter["item_id"] != gone].to_parquet(changed / "interactions.parquet", index=False)
    items["title"] = "renamed " + items["title"]
    items.to_parquet(changed / "items.parquet", index=False)
    # the ingest step's cache key moves, so kfp cannot reuse the old train step
    assert source_fingerprint(changed) != source_fingerprint(shop)

    def trained(data: Path, name: str) -> Path:
        ingest(str(data), str(tmp_path / f"ds-{name}"))
        train(str(tmp_path / f"ds-{name}"), str(tmp_path / name), "itemknn", KNN)
        return tmp_path / name

    old, new = trained(shop, "old"), trained(changed, "new")
    _, new_ids = rundir.load_model(new, device="cpu")
    index = SearchIndex.load(new / rundir.SEARCH_INDEX, new_ids)
    assert gone not in set(index.catalog.item_ids.tolist())
    assert all(t.startswith("renamed ") for t in index.catalog.titles[1:])
    with pytest.raises(IndexMismatch):  # what a server does with the old model's index
        SearchIndex.load(old / rundir.SEARCH_INDEX, new_ids)


def test_a_catalog_without_text_trains_without_an_index(tmp_path):
    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.steps import ingest, train

    bare = tmp_path / "bare"
    bare.mkdir()
    inter, _ = generate(SyntheticConfig(users=200, items=80, seed=5))
    inter.to_parquet(bare / "interactions.parquet", index=False)
    ingest(str(bare), str(tmp_path / "ds"))
    train(str(tmp_path / "ds"), str(tmp_path / "run"), "itemknn", KNN)
    assert rundir.missing_files(tmp_path / "run") == []
    assert not (tmp_path / "run" / rundir.SEARCH_INDEX).exists()


def test_train_refuses_a_store_loaded_with_other_data(built, tmp_path):
    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.steps import features, train

    other = tmp_path / "other"
    other.mkdir()
    inter, items = generate(SyntheticConfig(users=300, items=120, seed=99))
    inter.to_parquet(other / "interactions.parquet", index=False)
    items.to_parquet(other / "items.parquet", index=False)
    from augrec.steps import ingest

    ingest(str(other), str(tmp_path / "ds_other"))
    repo = new_feature_repo(tmp_path / "repo")
    features(str(tmp_path / "ds_other"), str(repo))
    source = {**built["source"], "repo": str(repo), "fingerprint": ""}
    with pytest.raises(ConfigError, match="holds other histories than the data"):
        train(built["ds"].path, str(tmp_path / "run"), "itemknn", KNN, 0, source)


def test_select_keeps_what_each_method_says(built, tmp_path):
    from augrec.steps import select

    assert built["selection"] == {
        "method": "none",
        "metric": "valid ndcg@10",
        "baseline": rundir.read_metrics(built["model"].path)["valid"]["ndcg@10"],
        "chosen": "baseline",
    }
    base, cand = built["model"].path, tmp_path / "cand"
    import shutil

    shutil.copytree(base, cand)
    metrics = rundir.read_metrics(cand)
    metrics["valid"]["ndcg@10"] -= 0.01  # a worse augmented model
    (cand / rundir.METRICS).write_text(json.dumps(metrics))
    assert select(base, "auto", str(tmp_path / "a"), str(cand))["chosen"] == "baseline"
    assert select(base, "mle", str(tmp_path / "b"), str(cand))["chosen"] == "augmented"
    metrics["valid"]["ndcg@10"] += 0.02  # now better on validation
    (cand / rundir.METRICS).write_text(json.dumps(metrics))
    doc = select(base, "auto", str(tmp_path / "c"), str(cand))
    assert doc["chosen"] == "augmented" and doc["augmented"] > doc["baseline"]
    assert rundir.read_metrics(tmp_path / "c")["valid"]["ndcg@10"] == doc["augmented"]


def test_gate_passes_registers_and_deploys(built, home):
    from augrec.components import release

    from augrec.registry.store import Registry

    assert built["passed"] is True
    assert rundir.read_json(built["gated"].path, rundir.GATE)["passed"]
    assert built["checks"].metadata["floor"] == 1.0
    tag = release.register.python_func(gated=built["gated"], home=str(home))
    event = release.deploy.python_func(
        tag=tag, home=str(home), alias="production", deployment="", namespace="default"
    )
    assert event["tag"] == tag and Registry(home).aliases.get("production") == tag


def test_reject_names_every_failed_check(built, tmp_path):
    from augrec.components import release

    from augrec.steps import GateRejected, gate

    cfg = {"floor": {"min_ndcg10": 0.99}}
    verdict = gate(built["chosen"].path, built["ds"].path, str(tmp_path / "g"), str(tmp_path), cfg)
    assert not verdict["passed"] and verdict["failed"] == ["floor"]
    with pytest.raises(GateRejected, match=r"floor: NDCG@10 .* is below the floor 0.9900"):
        release.reject.python_func(gated=art(dsl.Model, tmp_path / "g"))


def test_report_shows_the_gate_the_choice_and_the_buckets(built, tmp_path):
    from augrec.components import report

    page = art(dsl.HTML, tmp_path / "report.html")
    report.report.python_func(
        baseline=built["model"], gated=built["gated"], selection=built["selection"],
        dataset=built["ds"], page=page,
    )  # fmt: skip
    text = Path(page.path).read_text()
    assert "Validation gate" in text and "PASSED" in text
    assert "Augmentation: none" in text and "no augmentation was asked for" in text
    assert text.count("<img") == 2  # the two bucket charts; item-kNN has no epoch curves
    assert "No per-epoch curve" in text


def test_augment_writes_the_set_and_its_report(built, tmp_path):
    from augrec.components.augment import augment

    synthetic, page = art(dsl.Dataset, tmp_path / "syn"), art(dsl.HTML, tmp_path / "syn.html")
    augment.python_func(
        dataset=built["ds"], method="heuristic", config={}, seed=0, ray={},
        synthetic=synthetic, report=page,
    )  # fmt: skip
    assert (Path(synthetic.path) / "synthetic.parquet").exists()
    assert "synthetic" in Path(page.path).read_text().lower()
    assert synthetic.metadata["synthetic_interactions"] > 0


def test_a_step_runs_from_the_cli_as_a_rayjob_entrypoint(shop, tmp_path):
    from cli_helpers import run_cli

    args = json.dumps({"data": str(shop), "out": str(tmp_path / "ds")})
    assert run_cli("pipeline", "step", "ingest", "--args", args) == 0
    assert (tmp_path / "ds" / "dataset.json").exists()
    assert run_cli("pipeline", "step", "source_fingerprint", "--args", "{}") == 2  # not a step


def test_on_kuberay_launches_the_step_as_a_rayjob(monkeypatch, tmp_path):
    import augrec.k8s
    from augrec.k8s import render_rayjob
    from augrec.steps import train

    seen = {}

    def fake_run(cfg, timeout_s=None, log=None):  # the launcher itself is tested on kmock
        seen["manifest"] = render_rayjob(cfg)
        seen["timeout"] = timeout_s
        raise augrec.k8s.RayJobFailed(cfg.name, cfg.namespace, {"message": "stop here"})

    monkeypatch.setattr(augrec.k8s, "run_rayjob", fake_run)
    kuberay = {"image": "r/augrec:1", "namespace": "ml", "workers": {"gpus": 1}, "timeout_s": 60}
    with pytest.raises(augrec.k8s.RayJobFailed):
        train("s3://b/ds", "s3://b/model", "sasrec", {}, 0, ray={"kuberay": kuberay})
    entry = seen["manifest"]["spec"]["entrypoint"]
    assert entry.startswith("augrec pipeline step train --args ")
    assert '"dataset": "s3://b/ds"' in entry and '"ray_address": "auto"' in entry
    assert seen["timeout"] == 60 and seen["manifest"]["metadata"]["namespace"] == "ml"
