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
