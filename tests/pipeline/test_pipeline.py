"""The pipeline as a whole: compiled YAML a Kubeflow cluster loads, and real kfp.local runs."""

import json
from pathlib import Path

import pytest
import yaml
from pipeline_helpers import KNN, new_feature_repo

from augrec import rundir
from cli_helpers import run_cli


def _compile(tmp_path, *extra) -> dict:
    out = tmp_path / "pipeline.yaml"
    assert run_cli("pipeline", "compile", "-o", str(out), *extra) == 0
    return out, yaml.safe_load(out.read_text())


def test_compiled_pipeline_loads_and_every_input_is_wired(tmp_path):
    from kfp import components

    out, spec = _compile(tmp_path, "--image", "registry.example/augrec:test")
    loaded = components.load_component_from_file(str(out))  # kfp's own loader
    assert loaded.name == "augrec-train"
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {"registry.example/augrec:test"}
    dags = {"root": spec["root"], **spec["components"]}
    tasks = 0
    for dag in dags.values():
        for name, task in dag.get("dag", {}).get("tasks", {}).items():
            tasks += 1
            comp = spec["components"][task["componentRef"]["name"]]
            wanted = comp.get("inputDefinitions", {})
            given = task.get("inputs", {})
            for kind in ("parameters", "artifacts"):
                for key, d in wanted.get(kind, {}).items():
                    if d.get("isOptional") or "defaultValue" in d:
                        continue
                    assert key in given.get(kind, {}), f"{name}: input {key} not wired"
    assert tasks >= 20  # two branches, each with its select/gate/report/ship tail


def test_training_steps_retry_and_ask_for_gpus_when_scaled(tmp_path):
    scale = tmp_path / "scale.yaml"
    scale.write_text("gpus: 1\ntrain: {cpu: '8', memory: 32Gi}\n")
    _, spec = _compile(tmp_path, "--scale", str(scale))
    executors = spec["deploymentSpec"]["executors"]
    trains = [e for n, e in executors.items() if n.startswith("exec-train")]
    assert trains and all(
        e["container"]["resources"]["accelerator"]["resourceCount"] == "1"
        and e["container"]["resources"]["resourceCpuLimit"] == "8"
        for e in trains
    )
    gates = [e for n, e in executors.items() if n.startswith("exec-gate")]
    assert all("accelerator" not in e["container"].get("resources", {}) for e in gates)
    train_tasks = [
        t
        for c in [spec["root"], *spec["components"].values()]
        for n, t in c.get("dag", {}).get("tasks", {}).items()
        if n.startswith("train")
    ]
    assert train_tasks and all(t["retryPolicy"]["maxRetryCount"] == 2 for t in train_tasks)


def test_submit_needs_the_data_argument(tmp_path):
    out, _ = _compile(tmp_path)
    assert run_cli("pipeline", "submit", "--host", "http://127.0.0.1:9", "--package", str(out)) == 2


def test_params_parse_as_json_where_they_can():
    from augrec.pipelines.cluster import parse_params

    assert parse_params(["seed=3", 'ray={"num_workers": 2}', "data=s3://b/x"]) == {
        "seed": 3,
        "ray": {"num_workers": 2},
        "data": "s3://b/x",
    }


# ---- kfp.local --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_env(tmp_path_factory):
    """A Feast repo copy and a step cache shared by this module's runs."""
    root = tmp_path_factory.mktemp("kfp_local")
    return {"repo": new_feature_repo(root / "feature_repo"), "cache": root / "cache"}


def _run(local_env, monkeypatch, out, *args):
    monkeypatch.setenv("AUGREC_CACHE_DIR", str(local_env["cache"]))
    return run_cli(
        "run", "--out", str(out), "--model", "itemknn",
        "--feature-repo", str(local_env["repo"]), *args,
    )  # fmt: skip


@pytest.mark.kfp_local
def test_auto_augmentation_runs_end_to_end_and_the_served_model_is_the_promoted_one(
    shop, local_env, tmp_path, home, monkeypatch
):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**KNN, "augment": {"generator": {"epochs": 2}}}))
    out = tmp_path / "run"
    assert _run(local_env, monkeypatch, out, "--data", str(shop), "--augment", "auto",
                "--config", str(cfg)) == 0  # fmt: skip
    summary = json.loads((out / "run.json").read_text())
    assert summary["succeeded"]
    report = (out / "report.html").read_text()
    assert "Augmentation: auto" in report and "PASSED" in report
    sel = json.loads(next((out / "steps").glob("*/select-*/executor_output.json")).read_text())
    choice = sel["parameterValues"]["Output"]
    assert {"baseline", "augmented", "chosen"} <= set(choice)
    assert f"{choice['baseline']:.4f}" in report and f"{choice['augmented']:.4f}" in report
    from augrec.registry.store import Registry
    from augrec.serving.loading import load

    tag = Registry(home).aliases.get("production")
    assert tag is not None and load(None, str(home)).version == tag
    model = out / "model"
    assert rundir.read_json(model, rundir.GATE)["passed"]
    assert rundir.read_metrics(model)["params"] == {"neighbors": 50}  # ints survive kfp
    expected = "augmented" if choice["augmented"] > choice["baseline"] else "baseline"
    assert choice["chosen"] == expected


@pytest.mark.kfp_local
def test_a_gate_rejection_fails_the_run_and_promotes_nothing(
    shop, local_env, tmp_path, home, monkeypatch, capsys
):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**KNN, "gate": {"floor": {"min_ndcg10": 0.99}}}))
    out = tmp_path / "run"
    assert _run(local_env, monkeypatch, out, "--data", str(shop), "--config", str(cfg)) == 1
    printed = capsys.readouterr().out
    assert "rejected" in printed and "below the floor" in printed
    from augrec.registry.store import Registry

    assert Registry(home).versions() == [] and Registry(home).aliases.get("production") is None
    assert (out / "report.html").exists() and "FAILED: floor" in (out / "report.html").read_text()


@pytest.mark.kfp_local
def test_bad_data_stops_at_ingest_and_nothing_downstream_runs(
    local_env, tmp_path, home, monkeypatch
):
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\n1,2,10\n1,x,11\n")
    out = tmp_path / "run"
    assert _run(local_env, monkeypatch, out, "--data", str(bad), "--no-cache") == 2
    summary = json.loads((out / "run.json").read_text())
    assert summary["failed_task"] == "ingest"
    assert list(summary["outputs"]) in ([], ["ingest"])  # no step after it ran


def test_the_default_training_config_is_the_measured_best():
    from augrec.config import BEST_TRAIN

    repo = Path(__file__).resolve().parents[2]
    measured = yaml.safe_load((repo / "benchmarks/configs/sasrec-beauty.yaml").read_text())
    assert measured == BEST_TRAIN
