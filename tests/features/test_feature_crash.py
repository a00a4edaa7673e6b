"""kill -9 during `augrec features materialize`: no torn row, a readable registry, and the next
materialize completes the job.

The store starts materialized from data A; the sources are then replaced by B (every user has
one more, newer event) and `augrec features materialize` runs in a subprocess, SIGKILLed at
several moments after its first write to the online store. Afterwards the store is re-read
through the public read path (`FeatureClient`): the registry opens with every view, and every
user's row and every item's row is exactly A's or exactly B's. A whole-store swap is not what
an online store offers (see docs/reliability.md: the server writes live events into the same
store), so "old or new" holds per entity row; running materialize again makes every row B's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_helpers import copy_feature_repo

pytestmark = pytest.mark.slow  # each materialize process imports Feast (~6 s)

USERS = 1500
DELAYS = (0.0, 0.02, 0.1, 0.4)  # after the online store's first write


def materialize_argv(repo: Path) -> list[str]:
    return [sys.executable, "-m", "augrec.cli", "features", "materialize", "--repo", str(repo)]


def snapshot(repo: Path, users: list[int], items: list[int]) -> dict:
    """Every user's history and every item's popularity, read as the server reads them."""
    from augrec.features.online import FeatureClient
    from augrec.features.spec import ITEM_POPULARITY_VIEW, USER_HISTORY_VIEW

    client = FeatureClient.open(repo)
    views = {v.name for v in client.store.list_feature_views()}
    assert {USER_HISTORY_VIEW, ITEM_POPULARITY_VIEW} <= views, views  # the registry is whole
    out = {}
    for u in users:
        h = client.user_history(u)
        out[("user", u)] = (tuple(h.item_ids.tolist()), tuple(h.timestamps.tolist()))
    client.items.preload(items)
    rows = client.item_attributes(items)
    for i in items:
        out[("item", i)] = tuple(sorted((k, v) for k, v in rows[i].items() if v is not None))
    return out


def test_materialize_killed_at_any_moment_leaves_every_row_old_or_new(tmp_path):
    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.features import ingest, spec
    from augrec.features.store import apply, materialize, open_store

    a, items = generate(SyntheticConfig(users=USERS, items=300, seed=11))
    rng = np.random.default_rng(0)
    users = sorted(int(u) for u in a["user_id"].unique())
    extra = pd.DataFrame(
        {
            "user_id": users,
            "item_id": rng.choice(items["item_id"].to_numpy(), len(users)),
            "timestamp": int(a["timestamp"].max()) + 100 + np.arange(len(users)),
        }
    )
    b = pd.concat([a, extra.astype(a[extra.columns].dtypes)], ignore_index=True)
    item_ids = [int(i) for i in items["item_id"]]

    start = copy_feature_repo(tmp_path / "start")
    ingest.write_sources(ingest.build_sources(a, items), spec.sources_dir(start))
    store = open_store(start)
    apply(store)
    materialize(store)
    old = snapshot(start, users, item_ids)
    ingest.write_sources(ingest.build_sources(b, items), spec.sources_dir(start))

    ref = tmp_path / "reference"
    shutil.copytree(start, ref)
    done = subprocess.run(materialize_argv(ref), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    new = snapshot(ref, users, item_ids)
    changed = [k for k in old if old[k] != new[k]]
    assert len([k for k in changed if k[0] == "user"]) == len(users)  # B changes every user

    outcomes = []
    for i, delay in enumerate(DELAYS):
        repo = tmp_path / f"killed-{i}"
        shutil.copytree(start, repo)
        db = repo / "data" / "online_store.db"
        before = db.stat().st_mtime_ns
        proc = subprocess.Popen(
            materialize_argv(repo), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            journal = db.with_name(db.name + "-journal").exists()
            if journal or db.stat().st_mtime_ns != before:
                break
            time.sleep(0.001)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rc = proc.wait(30)
        got = snapshot(repo, users, item_ids)
        torn = [k for k in got if got[k] not in (old[k], new[k])]
        assert not torn, f"kill after {delay}s: rows neither old nor new: {torn[:5]}"
        outcomes.append((delay, rc, sum(got[k] == new[k] for k in changed)))
        # Nothing lost: materializing again completes the store.
        again = subprocess.run(materialize_argv(repo), capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr[-3000:]
        assert snapshot(repo, users, item_ids) == new
    # At least one kill landed while rows were being written (some new, some old).
    assert any(0 < n < len(changed) for _, rc, n in outcomes if rc == -signal.SIGKILL), outcomes
    print("kills (delay s, rc, rows already new of", len(changed), "):", outcomes)


def test_the_feast_registry_is_replaced_whole_or_not_at_all(fs_local_repo, tmp_path, monkeypatch):
    """A write killed at the rename leaves the previous registry readable, never an empty one."""
    from augrec.features.store import open_store

    repo = tmp_path / "repo"
    shutil.copytree(fs_local_repo[0], repo)
    registry = repo / "data" / "registry.db"
    store = open_store(repo)
    assert type(store.registry._registry_store).__name__ == "AtomicFileRegistryStore"
    before = registry.read_bytes()
    real_replace = os.replace

    def killed(src, dst):
        if str(dst) == str(registry):
            raise KeyboardInterrupt  # the process stops at the worst moment
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.registry.commit()
    monkeypatch.setattr(os, "replace", real_replace)
    assert registry.read_bytes() == before
    assert not [p for p in registry.parent.iterdir() if p.name.startswith(".registry.db.")]
    assert {v.name for v in open_store(repo).list_feature_views()}
