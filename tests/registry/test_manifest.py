"""The run manifest and rebuilding a model from a run directory."""

import json
import shutil

import numpy as np

from augrec.data.loaders import load_dataset
from augrec.registry.manifest import code_version, fingerprint_files


def test_directory_fingerprint_covers_the_files_read_and_ignores_the_folder(tiny_data, tmp_path):
    ds = load_dataset(tiny_data)
    fp = fingerprint_files(ds.files)
    assert [f["name"] for f in fp["files"]] == ["interactions.parquet", "items.parquet"]
    (tiny_data.parent / "unrelated.txt").write_text("not data")
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_data, copy)
    (copy / "notes.txt").write_text("not read by the loader")
    assert fingerprint_files(load_dataset(copy).files)["fingerprint"] == fp["fingerprint"]
    (copy / "items.parquet").unlink()  # a companion the loader no longer reads
    assert fingerprint_files(load_dataset(copy).files)["fingerprint"] != fp["fingerprint"]


def test_amazon_fingerprint_includes_time_and_attribute_companions(tmp_path):
    (tmp_path / "Toy.txt").write_text("10 5 7 9\n20 7 5 11 12\n")
    (tmp_path / "Toy_time_org_rank.txt").write_text("10 100 200 200\n20 50 60 70 80\n")
    (tmp_path / "Toy_item2attributes.json").write_text(json.dumps({"5": [1], "7": [2]}))
    fp = fingerprint_files(load_dataset(tmp_path / "Toy.txt").files)
    assert {f["name"] for f in fp["files"]} == {
        "Toy.txt",
        "Toy_time_org_rank.txt",
        "Toy_item2attributes.json",
    }
    (tmp_path / "Toy_item2attributes.json").write_text(json.dumps({"5": [1], "7": [3]}))
    assert fingerprint_files(load_dataset(tmp_path / "Toy.txt").files) != fp


def test_every_run_writes_a_manifest(runs, tiny_data):
    manifest = json.loads((runs["itemknn"] / "manifest.json").read_text())
    metrics = json.loads((runs["itemknn"] / "metrics.json").read_text())
    expected = fingerprint_files(load_dataset(tiny_data).files)["fingerprint"]
    assert manifest["data"]["fingerprint"] == expected
    assert manifest["data"]["path"] == str(tiny_data.resolve())
    assert manifest["split"]["protocol"] == "loo" and manifest["protocol"] == metrics["protocol"]
    assert manifest["model"] == {"name": "itemknn", "params": {"neighbors": 50}}
    assert manifest["seeds"] == {"seed": 0}
    assert manifest["config"] == json.loads((runs["itemknn"] / "config.json").read_text())
    assert manifest["features"] is None and manifest["augmentation"] is None
    assert manifest["code"]["version"] and "torch" in manifest["libraries"]
    assert manifest["timings"]["train"] >= 0 and manifest["timings"]["started_at"]
    assert "--model itemknn --seed 0" in manifest["command"]["reproduce"]
    other = json.loads((runs["popularity"] / "manifest.json").read_text())
    assert other["run_id"] != manifest["run_id"]
    assert other["data"]["fingerprint"] == manifest["data"]["fingerprint"]


def test_commit_from_the_environment_wins(monkeypatch):
    monkeypatch.setenv("AUGREC_GIT_COMMIT", "abc123")
    assert code_version()["git_commit"] == "abc123"


def test_load_run_model_reproduces_the_test_ranking(runs, tiny_data):
    from augrec.config import TrainConfig
    from augrec.data.splits import make_split
    from augrec.evaluation.evaluate import rank_users
    from augrec.evaluation.metrics import ndcg
    from augrec.rundir import load_model as load_run_model

    split = make_split(load_dataset(tiny_data), TrainConfig().split.kind)
    for name in ("itemknn", "sasrec0"):
        model, item_ids = load_run_model(runs[name])
        assert np.array_equal(item_ids, split.item_ids)
        ranks = rank_users(model, split.test).ranks
        metrics = json.loads((runs[name] / "metrics.json").read_text())
        assert ndcg(ranks, 10) == metrics["test"]["ndcg@10"], name


def test_the_reproduce_command_recreates_an_augmented_run_from_any_directory(
    tiny_data, tmp_path, monkeypatch
):
    import shlex

    from cli_helpers import run_cli

    aug, run, again = tmp_path / "aug", tmp_path / "run", tmp_path / "again"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("model:\n  neighbors: 30\n  decay: 0.8\n")
    assert run_cli("augment", "--data", str(tiny_data), "--method", "heuristic",
                   "--out", str(aug), "--allow-privacy-failure") == 0  # fmt: skip
    assert run_cli("train", "--data", str(tiny_data), "--model", "itemknn", "--seed", "4",
                   "--config", str(cfg), "--augment", str(aug), "--out", str(run)) == 0  # fmt: skip
    manifest = json.loads((run / "manifest.json").read_text())
    argv = shlex.split(manifest["command"]["reproduce"])
    assert "--augment" in argv and argv[argv.index("--augment") + 1] == str(aug.resolve())
    argv[argv.index("NEW_RUN_DIR")] = str(again)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # paths in the command resolve from any working directory
    assert argv[0] == "augrec" and run_cli(*argv[1:]) == 0
    first = json.loads((run / "metrics.json").read_text())
    second = json.loads((again / "metrics.json").read_text())
    assert second["augmentation"]["synthetic_interactions"] > 0
    assert second["test"] == first["test"] and second["params"] == {"neighbors": 30, "decay": 0.8}
