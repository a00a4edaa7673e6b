"""Online reads and live-event pushes, the same tests against SQLite and a real Redis."""

import numpy as np
import pytest
from feature_helpers import expected_history

from augrec.features import spec
from augrec.features.online import FeatureClient

N = spec.HISTORY_LENGTH
NEW_USER = 900_001  # not in the synthetic data; each test uses its own id range


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def client(request) -> FeatureClient:
    store = request.getfixturevalue(
        "fs_local_store" if request.param == "sqlite" else "fs_redis_store"
    )
    return FeatureClient(store)


def test_online_history_matches_the_latest_offline_row(client, fs_synthetic):
    _, interactions, _ = fs_synthetic
    lengths = interactions.groupby("user_id").size()
    users = [*lengths[lengths > N].index[:2], *lengths.index[:10]]
    for user in users:
        items, times = expected_history(interactions, user, 2**40, N)
        got = client.user_history(int(user))
        np.testing.assert_array_equal(got.item_ids, items)
        np.testing.assert_array_equal(got.timestamps, times)
    assert len(client.user_history(NEW_USER - 1)) == 0  # unknown user: empty, no error


def test_many_users_in_one_read_equal_one_read_each(client, fs_synthetic):
    _, interactions, _ = fs_synthetic
    users = [int(u) for u in interactions["user_id"].unique()[:6]]
    ask = [users[0], NEW_USER - 2, *users[1:], users[0]]  # an unknown user and a repeat
    got = client.user_histories(ask)
    assert [h.user_id for h in got] == ask
    for h in got:
        one = client.user_history(h.user_id)
        np.testing.assert_array_equal(h.item_ids, one.item_ids)
        np.testing.assert_array_equal(h.timestamps, one.timestamps)
    assert len(got[1]) == 0 and len(got[0]) > 0


def test_item_attributes_come_from_memory(client, fs_synthetic):
    _, interactions, items = fs_synthetic
    calls = []
    fetch = client.items._fetch

    def counting(ids):
        calls.append(len(ids))
        return fetch(ids)

    client.items._fetch = counting
    try:
        wanted = interactions["item_id"].drop_duplicates().head(30).tolist() + [10**9]
        got = client.item_attributes(wanted)
        again = client.item_attributes(wanted[:10])
    finally:
        client.items._fetch = fetch
    assert calls == [31]  # one batched read; the second call was served from memory
    assert again == {i: got[i] for i in wanted[:10]}
    row = items.set_index("item_id").loc[wanted[0]]
    assert got[wanted[0]]["category"] == row["category"]
    assert got[wanted[0]]["brand"] == row["brand"]
    assert got[wanted[0]]["price"] == pytest.approx(row["price"])
    assert got[wanted[0]]["events_total"] == int((interactions.item_id == wanted[0]).sum())
    assert all(v is None for v in got[10**9].values())  # unknown item: all None

    feats = client.user_features(int(interactions.user_id.iloc[0]))
    assert set(feats["items"]) == set(feats["item_ids"].tolist())


def test_pushed_event_is_visible_in_the_next_read(client):
    user = NEW_USER
    assert client.push_event(user, 11, 1_700_000_000) is True
    assert client.user_history(user).item_ids.tolist() == [11]
    assert client.push_event(user, 12, 1_700_000_100) is True
    got = client.user_history(user)
    assert got.item_ids.tolist() == [11, 12]
    assert got.timestamps.tolist() == [1_700_000_000, 1_700_000_100]


def test_duplicate_and_late_events(client):
    user = NEW_USER + 1
    client.push_event(user, 1, 1_700_000_000)
    client.push_event(user, 3, 1_700_000_300)
    # A retry of the same event changes nothing.
    assert client.push_event(user, 3, 1_700_000_300) is False
    # A late event lands in time order, and must survive stores that keep the newest write
    # only (Redis): its time is older than the stored row's.
    assert client.push_event(user, 2, 1_700_000_200) is True
    assert client.push_event(user, 2, 1_700_000_200) is False
    got = client.user_history(user)
    assert got.item_ids.tolist() == [1, 2, 3]
    assert got.timestamps.tolist() == [1_700_000_000, 1_700_000_200, 1_700_000_300]
    row, _ = client.user_row(user)
    assert (row.event_count, row.first_event_ts, row.last_event_ts) == (
        3,
        1_700_000_000,
        1_700_000_300,
    )


def test_push_on_a_materialized_user_extends_its_window(client, fs_synthetic):
    _, interactions, _ = fs_synthetic
    lengths = interactions.groupby("user_id").size()
    user = int(lengths[lengths > N].index[-1])
    before = client.user_history(user)
    assert len(before) == N
    t = int(before.timestamps[-1]) + 60
    assert client.push_event(user, 424_242, t) is True
    after = client.user_history(user)
    assert len(after) == N
    assert after.item_ids.tolist() == [*before.item_ids[1:].tolist(), 424_242]
    row, _ = client.user_row(user)
    assert row.event_count == int(lengths[user]) + 1
