"""kill -9 during `augrec models register` and `augrec models promote`: nothing partial survives.

Each command runs for real in a subprocess and is SIGKILLed at several moments: while it
writes (watching the registry for its first write) and at fractions of an uninterrupted run's
duration. Every time, a fresh copy of the same starting registry is used, and afterwards the
registry is re-read through its public read path (`versions`, `get`, `verify`, the aliases):
it must hold the old complete state or the new complete state, and running the command again
must finish the job.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a dozen CLI processes (imports dominate): ~1 minute here

MIB = 1024 * 1024
# After the registry's first write appears, kill after these many seconds ...
WATCH_DELAYS = (0.0, 0.05, 0.25)
# ... and, separately, at these fractions of an uninterrupted run's wall time.
FRACTIONS = (0.6, 0.9)


def augrec(*args: str) -> list[str]:
    return [sys.executable, "-m", "augrec.cli", *args]


def cli_env(home: Path) -> dict[str, str]:
    return {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}


def run_to_end(argv: list[str], home: Path) -> float:
    t0 = time.monotonic()
    out = subprocess.run(argv, env=cli_env(home), capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    return time.monotonic() - t0


def kill_when(argv: list[str], home: Path, started, delay: float) -> int:
    """Start `argv`; once `started()` is true (or the process ended), wait `delay`, SIGKILL."""
    proc = subprocess.Popen(
        argv, env=cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not started() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(30)


def kill_after(argv: list[str], home: Path, seconds: float) -> int:
    t0 = time.monotonic()
    return kill_when(argv, home, lambda: time.monotonic() - t0 >= seconds, 0.0)


@pytest.fixture
def big_run(runs, tmp_path) -> Path:
    """A run with a 48 MiB file: copying and hashing it is long enough to be killed mid-way."""
    run = tmp_path / "big-run"
    shutil.copytree(runs["itemknn"], run)
    (run / "search_index.zip").write_bytes(os.urandom(48 * MIB))
    return run


@pytest.fixture
def old_home(runs, tmp_path) -> tuple[Path, str]:
    """The starting registry: one version, promoted to production."""
    from augrec.registry.store import Registry

    home = tmp_path / "old-home"
    registry = Registry(home)
    version, _ = registry.register(runs["popularity"])
    registry.promote(version.tag)
    return home, version.tag


def copy_home(old: Path, dest: Path) -> Path:
    shutil.copytree(old, dest)
    return dest


def registry_state(home: Path) -> tuple[list[str], str | None]:
    """(tags of every listed version, production) re-read in a fresh registry object."""
    from augrec.registry.store import Registry

    registry = Registry(home)
    versions = registry.versions()
    for v in versions:
        assert v.verify() == [], f"{v.tag} is listed but incomplete: {v.verify()}"
        registry.get(v.name)  # the model name resolves (its `latest` file is whole)
    production = registry.aliases.get("production")
    if production is not None:
        assert registry.get("production").verify() == []
    return [v.tag for v in versions], production


def test_register_killed_at_any_moment_leaves_the_old_or_the_new_complete_state(
    old_home, big_run, tmp_path
):
    from augrec.registry.store import Registry

    old, production = old_home
    old_tags, _ = registry_state(old)
    argv = augrec("models", "register", str(big_run))

    ref = copy_home(old, tmp_path / "reference")
    took = run_to_end(argv, ref)
    new_tags, _ = registry_state(ref)
    assert len(new_tags) == len(old_tags) + 1

    def first_write(home: Path):
        # the staging area, or the model's folder for a store written in place
        return lambda: (
            (home / "augrec" / "staging").exists()
            or any(p.name.startswith("augrec-shop-itemknn") for p in (home / "models").iterdir())
        )

    points = [("watch", d) for d in WATCH_DELAYS] + [("time", f * took) for f in FRACTIONS]
    outcomes = []
    for i, (how, t) in enumerate(points):
        home = copy_home(old, tmp_path / f"killed-{i}")
        if how == "watch":
            rc = kill_when(argv, home, first_write(home), t)
        else:
            rc = kill_after(argv, home, t)
        tags, prod = registry_state(home)
        assert prod == production, (how, t)
        assert tags == old_tags or (
            tags[: len(old_tags)] == old_tags and len(tags) == len(old_tags) + 1
        ), (how, t, tags)
        outcomes.append((how, round(t, 3), rc, "new" if len(tags) > len(old_tags) else "old"))
        # Nothing lost: registering again completes it (or finds the complete version).
        run_to_end(argv, home)
        tags, _ = registry_state(home)
        assert len(tags) == len(old_tags) + 1, (how, t, tags)
        assert (
            Registry(home).get(tags[-1]).manifest["run_id"]
            == Registry(ref).get(new_tags[-1]).manifest["run_id"]
        )
    assert any(o[2] == -signal.SIGKILL for o in outcomes), outcomes


def test_promote_killed_at_any_moment_leaves_production_on_the_old_or_the_new_version(
    old_home, big_run, tmp_path
):
    from augrec.registry.store import Registry

    old, first = old_home
    second = Registry(old).register(big_run)[0].tag
    argv = augrec("models", "promote", second)

    ref = copy_home(old, tmp_path / "reference")
    took = run_to_end(argv, ref)
    assert Registry(ref).aliases.get("production") == second

    lock = old / "augrec" / "aliases.json.lock"
    points = [f * took for f in (0.5, 0.7, 0.8, 0.9, 0.95)]
    outcomes = []
    for i, t in enumerate(points):
        home = copy_home(old, tmp_path / f"killed-{i}")
        rc = kill_after(argv, home, t)
        tags, prod = registry_state(home)
        assert prod in (first, second), (t, prod)
        state = Registry(home).aliases.read()["aliases"]["production"]
        assert state["history"][-1]["to"] == prod  # the audit log agrees with the alias
        assert state["previous"] == ([] if prod == first else [first])
        outcomes.append((round(t, 3), rc, prod == second))
        run_to_end(argv, home)  # nothing lost: promoting again completes the move
        assert Registry(home).aliases.get("production") == second
        assert Registry(home).rollback()[0].tag == first
    assert lock.exists() and any(o[1] == -signal.SIGKILL for o in outcomes), outcomes
