"""Nothing a command writes by default lands in a tracked folder of the checkout."""

import shutil
import subprocess
from pathlib import Path

import pytest

from cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[1]

# What the commands and the README write when followed literally, relative to the repo root.
DEFAULT_OUTPUTS = [
    "data/demo/interactions.parquet",  # README: augrec data generate -o data/demo
    "runs/knn/metrics.json",  # README: augrec train ... --out runs/knn
    "runs/knn/gate.json",  # augrec gate --candidate runs/knn
    "runs/aug-gan/synthetic.parquet",  # README: augrec augment ... --out runs/aug-gan
    "runs/augmentation/x",  # benchmarks/*.py --work default
    "runs/run-20261201-120000/report.html",  # augrec run's default --out
    "pipeline.yaml",  # augrec pipeline compile's default -o
    "feature_repo/data/registry.db",  # feature_store.yaml registry (features apply, serve)
    "feature_repo/data/online_store.db",  # feature_store.yaml online store (materialize)
    "feature_repo/data/sources/history.parquet",  # features ingest default sources dir
    "services/_generated/augrec_v1_pb2.py",  # gRPC stubs generated at serve time
]
TRACKED = ["src/augrec/data/loaders.py", "feature_repo/feature_store.yaml"]

git = shutil.which("git")
pytestmark = pytest.mark.skipif(git is None, reason="git not installed")


def _ignored(root: Path, paths: list[str]) -> set[str]:
    proc = subprocess.run(
        [git, "check-ignore", "--no-index", *paths],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return set(proc.stdout.split())


def test_every_default_output_is_ignored_and_the_code_is_not():
    ignored = _ignored(REPO, DEFAULT_OUTPUTS + TRACKED)
    assert set(DEFAULT_OUTPUTS) - ignored == set()
    assert ignored & set(TRACKED) == set()


def test_readme_data_generate_leaves_the_checkout_clean(tmp_path, monkeypatch):
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    shutil.copy(REPO / ".gitignore", tmp_path / ".gitignore")
    monkeypatch.chdir(tmp_path)
    assert run_cli("data", "generate", "--users", "10", "--items", "20", "-o", "data/demo") == 0
    assert (tmp_path / "data/demo/interactions.parquet").exists()
    status = subprocess.run(
        [git, "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert status.stdout == "?? .gitignore\n"  # the only thing git would pick up
