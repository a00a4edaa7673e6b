"""Pure parts of the feature pipeline: source frames, live-event updates, config expansion.

No Feast here: these run in milliseconds.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from feature_helpers import expected_history

from augrec.errors import ConfigError
from augrec.features import ingest, spec
from augrec.features.history import UserRow, apply_event
from augrec.features.store import expand_env

DAY = 86_400


def _secs(col: pd.Series) -> list[int]:
    return [int(x.timestamp()) for x in col]


def _log(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_importing_the_feature_modules_does_not_import_feast():
    # A fresh interpreter: this session may already have imported Feast for other tests.
    code = (
        "import sys, augrec.cli, augrec.features, augrec.features.online, "
        "augrec.features.training, augrec.features.contract; "
        "assert 'feast' not in sys.modules, 'feast was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_user_events_one_row_per_event_time_with_window_and_ties():
    log = _log(
        [
            (1, 10, 100),
            (1, 11, 200),
            (1, 12, 200),  # same second as 11: one row holding both
            (1, 13, 300),
            (2, 10, 150),
        ]
    )
    t = ingest.build_user_events(log, history_length=2).to_pandas()
    assert t["user_id"].tolist() == [1, 1, 1, 2]
    assert t["event_timestamp"].dt.tz is not None
    assert _secs(t["event_timestamp"]) == [100, 200, 300, 150]
    assert [list(x) for x in t["item_ids"]] == [[10], [11, 12], [12, 13], [10]]
    assert [list(x) for x in t["item_timestamps"]] == [[100], [200, 200], [200, 300], [150]]
    assert t["event_count"].tolist() == [1, 3, 4, 1]
    assert t["first_event_ts"].tolist() == [100, 100, 100, 150]
    assert t["last_event_ts"].tolist() == [100, 200, 300, 150]


def test_user_events_match_the_as_of_definition_on_random_logs():
    rng = np.random.default_rng(0)
    n = 400
    log = _log(
        np.c_[rng.integers(1, 8, n), rng.integers(1, 50, n), rng.integers(0, 60, n) * 10]
    ).sort_values(["user_id", "timestamp"], kind="stable")
    t = ingest.build_user_events(log, history_length=5).to_pandas()
    for row in t.itertuples():
        at = int(row.event_timestamp.timestamp())
        items, times = expected_history(log, row.user_id, at, 5)
        np.testing.assert_array_equal(row.item_ids, items)
        np.testing.assert_array_equal(row.item_timestamps, times)
        n_before = int(((log["user_id"] == row.user_id) & (log["timestamp"] <= at)).sum())
        assert row.event_count == n_before


def test_item_popularity_counts_windows_as_of_each_row():
    log = _log(
        [
            (1, 7, 0),
            (2, 7, 3 * DAY),
            (3, 7, 3 * DAY),
            (4, 7, 20 * DAY),
            (5, 7, 40 * DAY),
            (1, 8, 5 * DAY),
        ]
    )
    t = ingest.build_item_popularity(log, windows_days=(7, 30)).to_pandas()
    item7 = t[t["item_id"] == 7]
    assert item7["events_total"].tolist() == [1, 3, 4, 5]
    assert item7["events_7d"].tolist() == [1, 3, 1, 1]
    assert item7["events_30d"].tolist() == [1, 3, 4, 2]
    assert t[t["item_id"] == 8]["events_total"].tolist() == [1]


def test_item_attributes_keep_unknown_values_null_and_stamp_first_sight():
    log = _log([(1, 1, 500), (2, 1, 100), (1, 2, 300)])
    items = pd.DataFrame(
        {"item_id": [1, 2, 3], "category": ["a", None, "c"], "price": [9.5, np.nan, 1.0]}
    )
    t = ingest.build_item_attributes(items, log).to_pandas()
    assert _secs(t["event_timestamp"]) == [100, 300, 100]
    assert t["category"].tolist() == ["a", None, "c"]
    assert t["brand"].isna().all()  # no brand column: all null, still the right type
    assert t["price"].iloc[0] == 9.5 and np.isnan(t["price"].iloc[1])


def test_write_sources_is_atomic_and_replaces_the_whole_directory(tmp_path):
    log = _log([(1, 1, 100), (1, 2, 200)])
    out = tmp_path / "data" / "sources"
    ingest.write_sources(ingest.build_sources(log), out)
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(
        [
            spec.USER_HISTORY_FILE,
            spec.USER_ACTIVITY_FILE,
            spec.ITEM_POPULARITY_FILE,
            spec.ITEM_ATTRIBUTES_FILE,
        ]
    )
    assert pq.read_table(out / spec.USER_HISTORY_FILE).num_rows == 2

    sources = ingest.build_sources(_log([(9, 9, 900)]))
    bad = ingest.Sources(sources.user_history, sources.user_activity, None, None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        ingest.write_sources(bad, out)
    # The failed write left the previous sources whole and no temporary folder behind.
    assert pq.read_table(out / spec.USER_HISTORY_FILE).num_rows == 2
    assert [p.name for p in out.parent.iterdir()] == ["sources"]

    # A folder with other files in it is never replaced.
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="notes.txt"):
        ingest.write_sources(sources, out)
    assert (out / "notes.txt").exists()


def test_sources_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(spec.SOURCES_DIR_ENV, raising=False)
    assert spec.sources_dir(tmp_path) == tmp_path / "data" / "sources"
    monkeypatch.setenv(spec.SOURCES_DIR_ENV, str(tmp_path / "elsewhere"))
    assert spec.sources_dir("/some/repo") == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("row", "event", "expected"),
    [
        # a new user
        (UserRow(), (5, 100), ((5,), (100,), 1, 100, 100)),
        # in order: appended
        (UserRow((1, 2), (10, 20), 2, 10, 20), (3, 30), ((1, 2, 3), (10, 20, 30), 3, 10, 30)),
        # late: placed in time order, stats still right
        (UserRow((1, 2), (10, 20), 2, 10, 20), (3, 15), ((1, 3, 2), (10, 15, 20), 3, 10, 20)),
        # same second as an existing event, different item: after it (arrival order)
        (UserRow((1, 2), (10, 20), 2, 10, 20), (3, 10), ((1, 3, 2), (10, 10, 20), 3, 10, 20)),
        # window full: the oldest falls out
        (UserRow((1, 2, 3), (10, 20, 30), 9, 1, 30), (4, 40), ((2, 3, 4), (20, 30, 40), 10, 1, 40)),
    ],
)
def test_apply_event(row, event, expected):
    new = apply_event(row, *event, length=3)
    assert new is not None
    assert (new.item_ids, new.item_timestamps, new.event_count) == expected[:3]
    assert (new.first_event_ts, new.last_event_ts) == expected[3:]


def test_apply_event_is_idempotent():
    row = UserRow((1, 2, 3), (10, 20, 30), 3, 10, 30)
    assert apply_event(row, 2, 20, length=3) is None  # duplicate
    assert apply_event(row, 9, 5, length=3) is None  # older than a full window
    once = apply_event(row, 4, 25, length=5)
    assert once is not None and apply_event(once, 4, 25, length=5) is None


def test_expand_env_names_missing_variables_and_fills_defaults():
    text = "x: ${AUGREC_REDIS_ENDPOINT},password=${AUGREC_REDIS_PASSWORD},ssl=${AUGREC_REDIS_SSL}"
    assert expand_env(text, "f.yaml", {"AUGREC_REDIS_ENDPOINT": "h:1"}) == (
        "x: h:1,password=,ssl=false"
    )
    with pytest.raises(ConfigError, match="AUGREC_REDIS_ENDPOINT"):
        expand_env(text, "f.yaml", {})


def test_package_exposes_the_helpers_lazily():
    import augrec.features as features
    from augrec.features.training import training_frame

    assert features.training_frame is training_frame
    with pytest.raises(AttributeError):
        features.nope  # noqa: B018
