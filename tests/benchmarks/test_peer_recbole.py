"""Smoke test of the RecBole peer benchmark on a tiny synthetic file (slow: needs RecBole's venv).

The venv is made on first use (pip, about 1-4 minutes, needs PyPI) at $AUGREC_RECBOLE_VENV or
at the benchmark's default place, runs/peer_recbole/recbole-venv, and reused afterwards.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "peer_recbole.py"


def tiny_sequences(path: Path, users: int = 150, items: int = 80, seed: int = 0) -> Path:
    """Amazon-style `user item item ...` lines that follow a learnable item-to-item walk."""
    rng = random.Random(seed)
    lines = []
    for u in range(1, users + 1):
        n = rng.randint(4, 10)
        seq = [rng.randint(1, items)]
        while len(seq) < n:
            nxt = (seq[-1] + rng.randint(0, 2)) % items + 1
            if nxt not in seq:
                seq.append(nxt)
        lines.append(" ".join(map(str, [u, *seq])))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    venv = os.environ.get(
        "AUGREC_RECBOLE_VENV", str(REPO / "runs" / "peer_recbole" / "recbole-venv")
    )
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--venv", venv, *args],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
    )


@pytest.mark.slow
def test_peer_benchmark_tiny(tmp_path):
    data = tiny_sequences(tmp_path / "Tiny.txt")
    work = tmp_path / "work"
    common = ["--data", str(data), "--work", str(work), "--results", str(tmp_path / "results")]
    common += ["--budget-minutes", "5"]
    proc = run(*common, "--max-epochs", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)

    for name in ("augrec", "recbole"):
        r = report[name]
        assert r["epochs"] == 2
        assert r["seconds_per_epoch"] > 0
        assert 0 <= r["best_valid_ndcg10"] <= 1 and 0 <= r["test_ndcg10"] <= 1
        assert "seconds_to_valid_ndcg10_0.03" in r
    assert "ratio_time_to_0.03" in report
    # RecBole split the file exactly as we do, over the same catalog.
    check = report["protocol_check"]
    assert check["valid_targets_identical"] and check["test_targets_identical"]
    assert check["items"]["augrec"] == check["items"]["recbole"] == 80
    # Same architecture size: the parameter counts agree.
    assert report["augrec"]["params"] == report["recbole"]["params"]
    # Our unmasked recomputation equals RecBole's own evaluator (it rounds to 4 places).
    rb = report["recbole"]
    assert rb["test_ndcg10_unmasked"] == pytest.approx(
        rb["test_ndcg10_recbole_evaluator"], abs=6e-5
    )
    assert "augrec epoch 1" in proc.stderr and "recbole epoch 1" in proc.stderr

    # Resumable: a rerun reuses both results; other settings are refused without --force.
    again = run(*common, "--max-epochs", "2")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "skip" in again.stderr and "recbole epoch" not in again.stderr
    assert json.loads(again.stdout)["recbole"] == rb
    changed = run(*common, "--max-epochs", "1")
    assert changed.returncode != 0 and "--force" in changed.stderr
