"""Amazon Beauty through the feature store: all 198k interactions ingested, point-in-time
reads for a few hundred users, online reads after materializing the history view.

Beauty's timestamps are days, so many events share a user and a time: the case where the
file offline store merges entity rows and where "as of t" must include same-day events.
About 45 s: the file offline store re-hashes the 121k-row history source on every read.
"""

import numpy as np
import pandas as pd
import pytest
from feature_helpers import copy_feature_repo, datasets_dir

from augrec.features import spec
from augrec.features.training import training_examples, training_frame, training_sequences

N = spec.HISTORY_LENGTH
BEAUTY = "amazon-beauty/derived/beauty_interactions.csv"


@pytest.fixture(scope="module")
def beauty(tmp_path_factory, fs_local_store):  # fs_local_store: Feast already imported
    path = datasets_dir() / BEAUTY
    if not path.exists():
        pytest.skip(f"real data absent: {path} (set AUGREC_DATA_DIR to the datasets folder)")
    from augrec.data.loaders import load_dataset
    from augrec.features import ingest
    from augrec.features.store import apply, open_store

    interactions = load_dataset(path).interactions
    repo = copy_feature_repo(tmp_path_factory.mktemp("fs_beauty") / "feature_repo")
    sources = ingest.build_sources(interactions)
    assert (
        sources.user_history.num_rows
        == interactions[["user_id", "timestamp"]].drop_duplicates().shape[0]
    )
    ingest.write_sources(sources, spec.sources_dir(repo))
    store = open_store(repo)
    apply(store)

    lengths = interactions.groupby("user_id").size()
    rng = np.random.default_rng(0)
    sample = rng.choice(lengths.index.to_numpy(), 300, replace=False).tolist()
    users = sorted(set(sample) | set(lengths.nlargest(3).index))  # longest: 204 events
    return store, interactions[interactions.user_id.isin(users)], users


def _per_user(log: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {
        int(u): (g["item_id"].to_numpy(np.int64), g["timestamp"].to_numpy(np.int64))
        for u, g in log.groupby("user_id", sort=False)
    }


def test_beauty_point_in_time_history(beauty):
    store, log, users = beauty
    events = log[["user_id", "item_id", "timestamp"]].reset_index(drop=True)
    probes = events.assign(timestamp=events["timestamp"] - 1)  # the second before each day
    query = pd.concat([events, probes], ignore_index=True)
    frame = training_frame(store, query)

    assert len(frame) == len(query)  # same-day duplicates and pre-history probes came back
    truth = _per_user(log)
    for row in frame.itertuples():
        items, times = truth[row.user_id]
        upto = int(np.searchsorted(times, row.timestamp, side="right"))
        # Only interactions at or before the event, all within the window, none missing.
        assert (row.item_timestamps <= row.timestamp).all()
        assert len(row.item_ids) == min(upto, N)
        np.testing.assert_array_equal(row.item_ids, items[:upto][-N:])
        np.testing.assert_array_equal(row.item_timestamps, times[:upto][-N:])
        assert row.event_count == upto

    seqs = training_sequences(frame.iloc[: len(events)])
    assert seqs.user_ids.tolist() == users
    for user, items in zip(seqs.user_ids, seqs.items, strict=True):
        np.testing.assert_array_equal(items, truth[user][0])  # up to 204 items, window 50

    examples = training_examples(frame.iloc[: len(events)])
    for ex in examples.itertuples():
        items, times = truth[ex.user_id]
        upto = int(np.searchsorted(times, ex.timestamp, side="right"))
        assert ex.target_item_id not in ex.input_item_ids.tolist()
        # A suffix of what the user had before this item, same-day earlier items included.
        before = items[:upto].tolist()
        prefix = before[: len(before) - before[::-1].index(ex.target_item_id) - 1]
        assert ex.input_item_ids.tolist() == prefix[len(prefix) - len(ex.input_item_ids) :]
        assert len(ex.input_item_ids) >= min(len(prefix), N - (upto - len(prefix)))


def test_beauty_online_history_after_materialize(beauty):
    from augrec.features.online import FeatureClient
    from augrec.features.store import materialize

    store, log, users = beauty
    materialize(store, views=[spec.USER_HISTORY_VIEW])  # the subset serving reads per request
    client = FeatureClient(store)
    truth = _per_user(log)
    for user in users:
        got = client.user_history(user)
        np.testing.assert_array_equal(got.item_ids, truth[user][0][-N:])
        np.testing.assert_array_equal(got.timestamps, truth[user][1][-N:])
