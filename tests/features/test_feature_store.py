"""The repo under real Feast (file offline store, SQLite online store) on synthetic data:
CLI set-up, point-in-time training frames, training sequences."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_helpers import copy_feature_repo, expected_history, invoke

from augrec.features import spec
from augrec.features.training import training_examples, training_frame, training_sequences

N = spec.HISTORY_LENGTH


def test_cli_sets_up_the_repo(fs_local_repo):
    repo, out = fs_local_repo
    assert "user_event_rows" in out["ingest"]
    assert "recommender_v1" in out["plan"] and "recommender_v1" in out["apply"]
    assert "materialized all views" in out["materialize"]
    assert "\x1b[" not in out["materialize"]  # piped: no raw ANSI codes from Feast
    assert (repo / "data" / "registry.db").exists()
    assert (repo / "data" / "online_store.db").exists()


def test_cli_help_explains_each_command():
    result = invoke("features", "--help")
    assert result.exit_code == 0
    for cmd in ("ingest", "plan", "apply", "materialize", "record", "check"):
        assert cmd in result.output
    result = invoke("features", "materialize", "--help")
    assert result.exit_code == 0 and "--start" in result.output and "--env" in result.output


def test_unknown_env_is_a_clear_error(fs_local_repo):
    result = invoke("features", "plan", "--repo", str(fs_local_repo[0]), "--env", "nope")
    assert result.exit_code != 0
    assert "feature_store.nope.yaml" in str(result.exception)


def _probe_events(interactions: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """Sampled events, the same times minus a second, and one time before each user's first."""
    ev = interactions.sample(n, random_state=seed)[["user_id", "item_id", "timestamp"]]
    before = ev.assign(timestamp=ev["timestamp"] - 1)
    first = interactions.groupby("user_id")["timestamp"].min()
    users = ev["user_id"].unique()[:10]
    too_early = pd.DataFrame(
        {"user_id": users, "item_id": 0, "timestamp": first.loc[users].to_numpy() - 3600}
    )
    return pd.concat([ev, before, too_early, ev.head(5)], ignore_index=True)  # + duplicates


def test_training_frame_is_point_in_time_correct(fs_local_store, fs_synthetic):
    _, interactions, _ = fs_synthetic
    events = _probe_events(interactions, 60)
    frame = training_frame(fs_local_store, events)

    # One row per input event, in input order: dropped and duplicate entity rows came back.
    assert len(frame) == len(events)
    pd.testing.assert_frame_equal(frame[["user_id", "item_id", "timestamp"]], events)
    for row in frame.itertuples():
        items, times = expected_history(interactions, row.user_id, row.timestamp, N)
        # Nothing after the event's time, nothing outside the window, nothing missing.
        assert (row.item_timestamps <= row.timestamp).all()
        assert len(row.item_ids) <= N
        np.testing.assert_array_equal(row.item_ids, items)
        np.testing.assert_array_equal(row.item_timestamps, times)
        assert row.event_count == int(
            (
                (interactions.user_id == row.user_id) & (interactions.timestamp <= row.timestamp)
            ).sum()
        )
    early = frame.tail(15).head(10)
    assert all(len(h) == 0 for h in early["item_ids"]) and (early["event_count"] == 0).all()
    assert early["last_event_ts"].isna().all()


def test_training_sequences_rebuild_full_histories_beyond_the_window(fs_local_store, fs_synthetic):
    _, interactions, _ = fs_synthetic
    lengths = interactions.groupby("user_id").size()
    long_users = lengths[lengths > N].index[:3].tolist()
    assert long_users, "fixture should have users longer than the window"
    users = long_users + lengths.index[:20].tolist()
    events = interactions[interactions.user_id.isin(users)]
    frame = training_frame(fs_local_store, events[["user_id", "item_id", "timestamp"]])
    seqs = training_sequences(frame)
    assert sorted(seqs.user_ids.tolist()) == sorted(set(users))
    for user, items, times in zip(seqs.user_ids, seqs.items, seqs.times, strict=True):
        truth = interactions[interactions.user_id == user]
        np.testing.assert_array_equal(items, truth["item_id"].to_numpy())
        np.testing.assert_array_equal(times, truth["timestamp"].to_numpy())

    # Per-event examples: the input is what came before the target (the window holds the
    # target itself, so at most N - 1 items), never the target.
    examples = training_examples(frame)
    for ex in examples.head(200).itertuples():
        truth = interactions[interactions.user_id == ex.user_id]
        pos = int(np.flatnonzero(truth["item_id"].to_numpy() == ex.target_item_id)[0])
        expected = truth["item_id"].to_numpy()[:pos][-(N - 1) :] if pos else []
        np.testing.assert_array_equal(ex.input_item_ids, expected)

    # The sequences plug into the code that takes Split-style encoded arrays.
    item_ids = np.concatenate([[-1], np.sort(interactions.item_id.unique())])
    encoded = seqs.encode(item_ids)
    assert all((e > 0).all() for e in encoded)


def test_training_frame_names_missing_columns(fs_local_store):
    from augrec.errors import ConfigError

    with pytest.raises(ConfigError, match="user_id"):
        training_frame(fs_local_store, pd.DataFrame({"timestamp": [1]}))


def test_plain_feast_cli_applies_the_repo(tmp_path):
    repo = copy_feature_repo(tmp_path / "feature_repo")
    feast = Path(sys.executable).with_name("feast")
    result = subprocess.run(
        [str(feast), "apply"], cwd=repo, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recommender_v1" in result.stdout
