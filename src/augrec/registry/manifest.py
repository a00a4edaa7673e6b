"""The run manifest: what a training run read, how it ran, and how to run it again.

`rundir.write_run` writes `manifest.json` into the run directory in the same atomic step as the
metrics and the model, so a run directory never holds a model without its lineage. The
registry copies it into every registered version, and the gate reads it to decide whether two
models were trained on the same data.

The data fingerprint is a content hash of the files the loader actually read (interactions,
plus an items table, Amazon timestamp/attribute companions or Diginetica categories when
present), keyed by file name, so the same data in another directory has the same fingerprint
and a changed companion file changes it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "augrec.manifest/1"
# Distributions whose versions change results or loading; read from installed metadata,
# never imported (importing ray, bentoml or feast costs seconds).
LIBRARIES = (
    "torch",
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "pydantic",
    "ray",
    "bentoml",
    "feast",
    "kfp",
)
# Set by image builds and CI, where the source tree has no .git: wins over `git rev-parse`.
COMMIT_ENV = "AUGREC_GIT_COMMIT"


def now_iso() -> str:
    """UTC now, to the second, ISO-8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_files(files: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Content fingerprint of a set of input files.

    Returns:
        `{"fingerprint": "sha256:<hex>", "files": [{"name", "bytes", "sha256"}, ...]}`; the
        fingerprint hashes the sorted `name<TAB>sha256` lines, so it depends on contents and
        file names but not on the directory the files sit in.
    """
    entries = []
    for f in files:
        p = Path(f)
        entries.append({"name": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)})
    entries.sort(key=lambda e: e["name"])
    lines = "".join(f"{e['name']}\t{e['sha256']}\n" for e in entries)
    return {"fingerprint": "sha256:" + hashlib.sha256(lines.encode()).hexdigest(), "files": entries}


def _git(cwd: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def code_version() -> dict[str, Any]:
    """The package version, and the git commit when the code runs from a git checkout.

    The commit counts only when augrec's own files are tracked in that repository (a virtual
    environment inside some other repo must not borrow its commit). `AUGREC_GIT_COMMIT`
    overrides it for images built without `.git`.
    """
    try:
        version = importlib.metadata.version("augrec")
    except importlib.metadata.PackageNotFoundError:
        from augrec import __version__ as version
    commit = os.environ.get(COMMIT_ENV) or None
    dirty = None
    if commit is None:
        pkg = Path(__file__).resolve().parents[1]
        if _git(pkg, "ls-files", "--error-unmatch", "__init__.py") is not None:
            commit = _git(pkg, "rev-parse", "HEAD")
            status = _git(pkg, "status", "--porcelain", "--untracked-files=no")
            dirty = None if status is None else bool(status)
    return {"package": "augrec", "version": version, "git_commit": commit, "git_dirty": dirty}


def library_versions() -> dict[str, str | None]:
    """Python and the libraries in `LIBRARIES` (None where not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def features_summary(contract: dict[str, Any] | None) -> dict[str, Any] | None:
    """FeatureService names and definition fingerprints from a `features.json` document."""
    if not contract:
        return None
    return {
        "project": contract.get("project"),
        "services": [
            {"name": s["name"], "fingerprint": s["fingerprint"]} for s in contract["services"]
        ],
    }


SYNTHETIC_REPORT = "synthetic_report.json"


def augmentation_summary(augmentation: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the manifest keeps of an augmentation: the method, and the report's verdicts.

    `augmentation` is what training recorded (`method`, `path` of the synthetic set, ...).
    When `<path>/synthetic_report.json` exists, its privacy numbers, gates and overall
    verdict are copied in as `report`, so the validation gate can judge the run even after
    the synthetic set has moved or been deleted.
    """
    if not augmentation:
        return None
    out = dict(augmentation)
    if out.get("path"):
        out["path"] = str(Path(out["path"]).resolve())
        report_path = Path(out["path"]) / SYNTHETIC_REPORT
        if "report" not in out and report_path.exists():
            report = json.loads(report_path.read_text())
            out["report"] = {
                "passed": report.get("passed"),
                "gates": report.get("gates"),
                "privacy": report.get("privacy"),
            }
    return out


def reproduce_command(
    data_path: str,
    model: str,
    seed: int,
    trainer: dict[str, Any] | None = None,
    config_path: str | os.PathLike[str] = "config.json",
    augment_path: str | os.PathLike[str] | None = None,
) -> str:
    """The `augrec train` line that reruns this run, with absolute paths (runs from anywhere).

    `config_path` is the run's own `config.json`; `augment_path` the synthetic set it was
    trained with, if any (without it, "reproduce" would train something else).
    """
    args = ["augrec", "train", "--data", data_path, "--model", model, "--seed", str(seed)]
    args += ["--config", str(config_path), "--out", "NEW_RUN_DIR"]
    if augment_path is not None:
        args += ["--augment", str(augment_path)]
    if trainer and trainer.get("num_workers"):
        args += ["--num-workers", str(trainer["num_workers"])]
        if trainer.get("use_gpu"):
            args.append("--use-gpu")
    return shlex.join(args)


def build_manifest(
    *,
    dataset: str,
    data_source: dict[str, Any],
    protocol: str,
    split_config: dict[str, Any],
    split_sizes: dict[str, int],
    model: str,
    params: dict[str, Any],
    seed: int,
    config: dict[str, Any],
    seconds: dict[str, float],
    started_at: str | None = None,
    trainer: dict[str, Any] | None = None,
    feature_contract: dict[str, Any] | None = None,
    augmentation: dict[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The `manifest.json` document of one run.

    Args:
        dataset: Dataset name (as in metrics.json).
        data_source: `path`, `format` and the `fingerprint_files` result of the input.
        protocol: Split protocol (`loo` or `temporal`).
        split_config: The `split:` section of the run config (kind and cut-offs).
        split_sizes: Users, items and interactions the split holds.
        model: Model name (`build_model` key).
        params: The selected model's hyper-parameters.
        seed: The run's seed (RNGs and model initialisation).
        config: The resolved run config (`config.json`).
        seconds: Wall time per phase.
        started_at: When the run started (ISO-8601 UTC).
        trainer: `{"kind": "in-process"}` or the Ray Train settings.
        feature_contract: The `features.json` document when features came from Feast.
        augmentation: What training recorded about augmentation (method, synthetic set
            path, ...), or None; see `augmentation_summary`.
        argv: The command line that ran (default: this process's).
        run_dir: Where the run is written; its `config.json` is the reproduce command's.
    """
    from augrec import rundir

    trainer = trainer or {"kind": "in-process"}
    data_path = str(data_source.get("path", ""))
    config_path = Path(run_dir).resolve() / rundir.CONFIG if run_dir else rundir.CONFIG
    aug_path = (augmentation or {}).get("path")
    augment_path = Path(aug_path).resolve() if aug_path else None
    return {
        "format": FORMAT,
        "run_id": uuid.uuid4().hex,
        "created_at": now_iso(),
        "dataset": dataset,
        "data": {**data_source, **split_sizes},
        "split": {"protocol": protocol, **split_config},
        "protocol": f"{protocol}-full",
        "model": {"name": model, "params": params},
        "seeds": {"seed": seed},
        "config": config,
        "trainer": trainer,
        "command": {
            "argv": list(sys.argv if argv is None else argv),
            "reproduce": reproduce_command(
                data_path, model, seed, trainer, config_path, augment_path
            ),
        },
        "code": code_version(),
        "features": features_summary(feature_contract),
        "augmentation": augmentation_summary(augmentation),
        "libraries": library_versions(),
        "timings": {"started_at": started_at, "finished_at": now_iso(), **seconds},
    }
