"""The search benchmark on tiny synthetic data: metrics recomputed from its parquet, resume."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from augrec.config import TrainConfig
from augrec.data.synthetic import SyntheticConfig, generate
from augrec.rundir import write_run
from augrec.training.run import train_and_evaluate

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "search.py"


def _module():
    spec = importlib.util.spec_from_file_location("search_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search-bench")
    interactions, items = generate(SyntheticConfig(users=120, items=80, seed=1))
    data = tmp / "data"
    data.mkdir()
    interactions.to_csv(data / "interactions.csv", index=False)
    items.to_csv(data / "items.csv", index=False)
    runs = []
    for seed in (0, 1):
        cfg = TrainConfig(model={"epochs": 1, "hidden": 16, "max_len": 10})
        result = train_and_evaluate(data, "sasrec", cfg, seed=seed)
        runs.append(write_run(result, tmp / f"run{seed}", cfg, overwrite=False))
    return tmp, data, runs


def test_reported_metrics_equal_those_recomputed_from_the_parquet(setup):
    tmp, data, runs = setup
    bench = _module()
    results = tmp / "results"
    argv = ["--data", str(data), "--results", str(results), "--cache-dir", str(tmp / "c")]
    summary = bench.main([*argv, "--models", *map(str, runs)])
    assert summary["seeds"] == [0, 1]
    for run in runs:
        doc = json.loads((results / run.name / "metrics.json").read_text())
        frame = pd.read_parquet(results / run.name / "search_results.parquet")
        assert doc["test"] == bench.recompute(frame)
        assert len(frame) == doc["users"]["test"] > 0
        # The query is the target's category words, never its title.
        assert set(frame["query"]) <= {f"cat {c:02d}" for c in range(20)}
        chosen = doc["params"]
        grid = doc["valid_grid"]["personalization"]
        best = max(g["ndcg@10"] for g in grid)
        assert any(g["weight"] == chosen["personalization"] and g["ndcg@10"] == best for g in grid)
    # The summary's means are the per-seed numbers' means.
    per_seed = [json.loads((results / r.name / "metrics.json").read_text()) for r in runs]
    for m in bench.METHODS:
        want = np.mean([d["test"][m]["ndcg@10"] for d in per_seed])
        assert summary["test"][m]["ndcg@10"]["mean"] == pytest.approx(want)
    # Rows without a model are the same for every seed.
    assert per_seed[0]["test"]["bm25"] == per_seed[1]["test"]["bm25"]


def test_resume_reads_finished_models(setup, monkeypatch):
    tmp, data, runs = setup
    bench = _module()
    results = tmp / "results-resume"
    argv = ["--data", str(data), "--results", str(results), "--cache-dir", str(tmp / "c")]
    first = bench.main([*argv, "--models", str(runs[0])])

    def fail(*_a, **_k):
        raise AssertionError("a finished model is not re-evaluated")

    monkeypatch.setattr(bench, "evaluate_model", fail)
    assert bench.main([*argv, "--models", str(runs[0])])["test"] == first["test"]


def test_query_words_are_distinct_lowercase_words():
    bench = _module()
    assert bench.query_words(["Makeup", "Face", "Concealers & Neutralizers"]) == (
        "makeup face concealers neutralizers"
    )
    assert bench.query_words(["Skin Care", "Face", "Skin Care"]) == "skin care face"


def test_fast_personalized_ranks_equal_full_catalog_ranking(setup):
    import torch

    from augrec.data.loaders import load_dataset
    from augrec.data.splits import leave_one_out
    from augrec.evaluation.ranking import mask_scores, target_ranks
    from augrec.rundir import load_model
    from augrec.search import rank
    from augrec.search.catalog import catalog_from_dataset
    from augrec.search.index import SearchIndex

    tmp, data, runs = setup
    bench = _module()
    ds = load_dataset(data)
    split = leave_one_out(ds)
    index = SearchIndex.build(catalog_from_dataset(ds, split.item_ids), cache_dir=tmp / "c")
    qs = bench.Queries(index, split.test)
    fused = bench.fused_matrix(bench.text_rows(index, qs), 0.5, 10)
    model, _ = load_model(runs[0])
    combos = [(0.0, 5), (0.7, 5), (2.0, 30), (1.0, 1000)]
    fast, rec = bench.personalized_ranks(model, fused, bench.ranks_from(fused, qs), qs, combos)
    with torch.no_grad():
        scores = model.score(qs.histories)
    for w, d in combos:
        full = rank.personalize(fused[torch.from_numpy(qs.qidx)], scores, w, d)
        mask_scores(full, qs.histories)
        np.testing.assert_array_equal(fast[(w, d)], target_ranks(full, qs.targets), err_msg=str(w))
    np.testing.assert_array_equal(
        rec, target_ranks(mask_scores(scores.clone(), qs.histories), qs.targets)
    )
