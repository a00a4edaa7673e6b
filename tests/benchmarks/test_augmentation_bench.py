"""The augmentation ablation script on tiny synthetic data: results, resume, pairing, docs."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from augrec.data.synthetic import SyntheticConfig, generate

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "augmentation.py"
SMOKE = REPO / "benchmarks" / "configs" / "augmentation-smoke.yaml"


def _module():
    spec = importlib.util.spec_from_file_location("augmentation_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aug-bench")
    interactions, _ = generate(SyntheticConfig(users=200, items=100, seed=0))
    interactions.to_csv(out / "interactions.csv", index=False)
    return out


def _run(data: Path, tmp: Path, *extra: str) -> dict:
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--data",
        str(data),
        "--config",
        str(SMOKE),
        "--work",
        str(tmp / "work"),
        "--results",
        str(tmp / "results"),
        "--no-docs",
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_runs_pairs_and_resumes(data, tmp_path):
    summary = _run(data, tmp_path, "--seeds", "2", "--methods", "none", "heuristic")
    files = sorted(p.name for p in (tmp_path / "results").glob("*.json"))
    assert files == [f"{m}-seed{s}.json" for m in ("heuristic", "none") for s in (0, 1)]
    heur = summary["heuristic"]
    assert heur["seeds"] == [0, 1] and heur["synthetic_share"] > 0
    assert heur["paired_vs_none"]["all"]["users"] == 200
    assert summary["none"]["synthetic_share"] == 0 and "paired_vs_none" not in summary["none"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "results").glob("*.json")}
    again = _run(data, tmp_path, "--seeds", "2", "--methods", "none", "heuristic", "--jobs", "2")
    assert again == summary  # every run skipped: the same numbers, files untouched
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_pairs_by_seed_when_one_is_missing():
    bench = _module()

    def run(method, seed, ranks):
        buckets = {
            "history_length": {"a": {"ndcg@10": 0.1}},
            "target_popularity": {"b": {"ndcg@10": 0.1}},
        }
        return {
            "method": method,
            "seed": seed,
            "ranks": ranks,
            "history_length": [1, 9],
            "test": {"ndcg@10": 0.1, "hr@10": 0.2},
            "buckets": buckets,
            "synthetic_share": 0.0,
            "seconds": {"train": 1.0},
            "privacy_passed": True,
        }

    base = [run("none", 0, [0, 5]), run("none", 1, [1, 5])]
    other = [run("gan", 1, [0, 5])]  # seed 0 failed: compare seed 1 with seed 1 only
    summary = bench.summarise({"none": base, "gan": other})
    p = summary["gan"]["paired_vs_none"]["all"]
    # seed 1's base ranks only (0-based 1 and 5); with seed 0 mixed in it would be 0.586
    assert p["base_ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(7)) / 2)


def test_device_override_and_docs_sections(tmp_path):
    bench = _module()
    cfg = bench.with_device({"train": {"model": {"hidden": 8}}, "augment": {}}, "cuda")
    assert cfg["train"]["model"] == {"hidden": 8, "device": "cuda"}
    assert cfg["augment"]["generator"]["device"] == "cuda"
    assert cfg["augment"]["selector"]["params"]["device"] == "cuda"
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# B\n<!-- a:start -->\nold\n<!-- a:end -->\ntail\n")
    bench.write_docs("new \\1 text", docs, "a")  # a backslash in the table must not be a regex
    bench.write_docs("other", docs, "b")
    body = docs.read_text()
    assert "<!-- a:start -->\nnew \\1 text\n<!-- a:end -->\ntail" in body and "old" not in body
    assert body.rstrip().endswith("<!-- b:start -->\nother\n<!-- b:end -->")


def test_generator_privacy_reports_every_epoch(data):
    script = REPO / "benchmarks" / "generator_privacy.py"
    cmd = [sys.executable, str(script), "--curve", "--data", str(data), "--config", str(SMOKE)]
    proc = subprocess.run([*cmd, "--epochs", "3"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert [r["epoch"] for r in out["by_epoch"]] == [1, 2, 3]
    assert all(0 <= r["mia_auc"] <= 1 for r in out["by_epoch"])
    assert out["nonmembers"] > 0 and out["generator"]["epochs"] == 3


def test_generator_privacy_sweep_writes_a_row_per_setting_and_resumes(data, tmp_path):
    script = REPO / "benchmarks" / "generator_privacy.py"
    cmd = [
        sys.executable,
        str(script),
        "--data",
        str(data),
        "--config",
        str(SMOKE),
        "--settings",
        "mle-stop",
        "dp-eps8",
        "--dp-batch-size",
        "40",
        "--results",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert set(rows) == {"mle-stop-seed0", "dp-eps8-seed0"}
    assert rows["mle-stop-seed0"]["epsilon"] is None
    assert 0 < rows["dp-eps8-seed0"]["epsilon"] <= 8.0 * 1.01
    for r in rows.values():
        assert 0.5 <= r["attack_auc"] <= 1 and r["stopping_users"] > 0
        assert set(r["gates"]) == {"exact_copy_rate", "dcr_exact_match_share", "mia_auc"}
    assert "| dp-eps8 |" in proc.stdout and "| mle-stop |" in proc.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "skip mle-stop" in again.stderr


def test_pre_recipe_result_files_are_read_under_their_recipe_names(tmp_path):
    bench = _module()
    (tmp_path / "mle-seed0.json").write_text(json.dumps({"method": "mle", "seed": 0}))
    (tmp_path / "gan-mix-seed0.json").write_text(json.dumps({"method": "gan-mix", "seed": 0}))
    (tmp_path / "gan-seed0.json").write_text(json.dumps({"method": "gan", "seed": 0, "old": 1}))
    assert bench.read_done(tmp_path, "mle-mix", 0)["method"] == "mle-mix"
    assert bench.read_done(tmp_path, "mle-mix", 0)["legacy_name"] == "mle"
    assert "old" not in bench.read_done(tmp_path, "gan-mix", 0)  # the new file wins
    assert bench.read_done(tmp_path, "gan-pretrain", 0) is None
    aug, over = bench.recipe("gan-weighted", {"recipes": {"gan-weighted": {"model": {"x": 1}}}})
    assert aug == "gan" and over["model"] == {"x": 1}
    assert over["selection"]["users"] == "short"  # merged with the default, not replaced


def _fake(method, seed, ranks, noisy=None, popularity=(1, 50)):
    buckets = {
        "history_length": {"a": {"ndcg@10": 0.1}},
        "target_popularity": {"<=5": {"ndcg@10": 0.2}, ">5": {"ndcg@10": 0.1}},
    }
    run = {
        "method": method,
        "seed": seed,
        "ranks": ranks,
        "history_length": [1, 9],
        "target_popularity": list(popularity),
        "test": {"ndcg@10": 0.1, "hr@10": 0.2},
        "buckets": buckets,
        "synthetic_share": 0.0,
        "seconds": {"train": 1.0},
        "privacy_passed": True,
    }
    if noisy is not None:
        run["test_noisy"] = {"0.1": {"ndcg@10": 0.05, "hr@10": 0.1, "ranks": noisy}}
    return run


def test_summary_reports_tail_targets_noisy_histories_and_gan_against_mle():
    bench = _module()
    summary = bench.summarise(
        {
            "none": [_fake("none", 0, [0, 5], noisy=[3, 50])],
            "mle-mix": [_fake("mle-mix", 0, [1, 5])],
            "gan-pretrain": [_fake("gan-pretrain", 0, [0, 2])],
            "adversarial": [_fake("adversarial", 0, [0, 5], noisy=[0, 50])],
        }
    )
    gan = summary["gan-pretrain"]
    # user 0's target has 1 training interaction (tail), user 1's has 50
    assert gan["paired_vs_none"]["target<=5"]["users"] == 1
    assert gan["paired_vs_none"]["target<=5"]["relative_lift"] == 0.0
    assert gan["paired_vs_mle_mix"]["target<=5"]["base_ndcg@10"] == pytest.approx(1 / np.log2(3))
    assert gan["ndcg@10_target<=5"]["mean"] == 0.2
    adv = summary["adversarial"]["paired_vs_none_noisy"]["0.1"]
    assert adv["base_ndcg@10"] == pytest.approx((1 / np.log2(5)) / 2)
    assert adv["ndcg@10"] == pytest.approx(0.5)
    assert "paired_vs_mle_mix" not in summary["adversarial"]
    text = bench.markdown(summary, "cmd")
    assert "10% noisy" in text and "MLE-only" in text and "tail targets ≤5" in text


def test_auto_picks_on_validation_only_and_reports_the_picks_test():
    bench = _module()

    def run(method, seed, ranks, overall, short):
        r = _fake(method, seed, ranks)
        r["params"] = {"epochs": 3}
        # the candidate it kept, and one it did not (higher, so it must not be read)
        r["candidates"] = [
            {"params": {"epochs": 3}, "valid_ndcg@10": overall, "valid_ndcg@10_history<=5": short},
            {"params": {"epochs": 9}, "valid_ndcg@10": 0.9, "valid_ndcg@10_history<=5": 0.9},
        ]
        return r

    by_method = {
        "none": [run("none", 0, [3, 5], 0.100, 0.050), run("none", 1, [3, 5], 0.100, 0.050)],
        # best short users on validation, but overall 1% below none's: not eligible
        "text": [run("text", 0, [0, 0], 0.099, 0.090), run("text", 1, [0, 0], 0.099, 0.090)],
        # within 0.5% overall, better short users: picked on seed 0; worse on seed 1
        "gan-pretrain": [
            run("gan-pretrain", 0, [1, 5], 0.0996, 0.060),
            run("gan-pretrain", 1, [1, 5], 0.100, 0.040),
        ],
    }
    summary = bench.summarise(by_method)
    auto = summary["auto"]
    assert auto["chosen"] == ["gan-pretrain", "none"] and auto["seeds"] == [0, 1]
    # its test is the picks' test: seed 0 from gan-pretrain, seed 1 from none
    want = np.mean([1 / np.log2(3) + 1 / np.log2(7), 1 / np.log2(5) + 1 / np.log2(7)]) / 2
    assert auto["paired_vs_none"]["all"]["ndcg@10"] == pytest.approx(want)
    assert "seed 0: gan-pretrain, seed 1: none" in bench.markdown(summary, "cmd")
    # without a none run there is no baseline to pick against
    assert "auto" not in bench.summarise({"text": by_method["text"]})


@pytest.fixture(scope="module")
def titled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aug-bench-titles")
    interactions, items = generate(SyntheticConfig(users=200, items=100, seed=0))
    interactions.to_csv(out / "interactions.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    return out


@pytest.mark.slow
def test_every_recipe_runs_end_to_end(titled, tmp_path):
    """Item 7's smoke: every recipe through the whole script on a tiny titled catalog."""
    bench = _module()
    summary = _run(titled, tmp_path, "--seeds", "1", "--methods", *bench.DEFAULT_METHODS)
    assert list(summary) == [*bench.DEFAULT_METHODS, "auto"]  # auto: picked on validation
    assert summary["auto"]["chosen"][0] in bench.DEFAULT_METHODS
    results = {
        m: json.loads((tmp_path / "results" / f"{m}-seed0.json").read_text())
        for m in bench.DEFAULT_METHODS
    }
    assert (
        results["gan-pretrain"]["synthetic_set_reused"]
        or results["gan-mix"]["synthetic_set_reused"]
    )
    assert results["gan-pretrain"]["params"]["finetune"] is True
    assert results["gan-weighted"]["params"]["synthetic_weight"] in (0.0, 0.5)
    assert results["adversarial"]["params"]["adv_eps"] == 0.1
    for m, r in results.items():
        assert set(r["test_noisy"]) == {"0.1", "0.2"}, m
        assert "<=5" in r["buckets"]["target_popularity"], m
    assert "target<=5" in summary["text+gan"]["paired_vs_none"]
    assert "paired_vs_mle_mix" in summary["gan-mix"]
