import numpy as np
import pytest

from augrec.config import TrainConfig
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out
from augrec.errors import ConfigError
from augrec.models import available_models, build_model
from augrec.models.itemknn import cooccurrence_similarity
from augrec.training.run import train_and_evaluate


def test_registry():
    assert {"popularity", "itemknn"} <= set(available_models())
    with pytest.raises(ConfigError, match="--model"):
        build_model("nope")
    with pytest.raises(ConfigError, match="neighbors"):
        build_model("itemknn", {"neighbors": 0})
    with pytest.raises(ConfigError, match="neighbours"):
        build_model("itemknn", {"neighbours": 5})  # typo is an error, not ignored


def test_popularity_orders_by_training_count(synthetic_dir):
    split = leave_one_out(load_dataset(synthetic_dir))
    model = build_model("popularity")
    model.fit(split)
    items, _ = model.topk([np.array([], dtype=np.int64)], k=5)
    counts = split.item_counts
    assert counts[items[0]].tolist() == sorted(counts[1:], reverse=True)[:5]
    # seen items are excluded
    seen = items[0][:2]
    again, _ = model.topk([seen], k=5)
    assert not set(seen) & set(again[0])


def test_cooccurrence_similarity_by_hand():
    # users: {1,2}, {1,2}, {1,3}; counts n1=3, n2=2, n3=1
    train = [np.array([1, 2]), np.array([2, 1]), np.array([1, 3])]
    sim = cooccurrence_similarity(train, n_items=3, neighbors=10, shrink=0.0).toarray()
    assert sim[1, 2] == pytest.approx(2 / np.sqrt(3 * 2))
    assert sim[1, 3] == pytest.approx(1 / np.sqrt(3 * 1))
    assert sim[2, 3] == 0.0 and sim[1, 1] == 0.0
    pruned = cooccurrence_similarity(train, n_items=3, neighbors=1, shrink=0.0).toarray()
    assert (pruned[1] > 0).sum() == 1 and pruned[1, 2] > 0  # kept the strongest


def test_itemknn_save_load_round_trip(synthetic_dir):
    split = leave_one_out(load_dataset(synthetic_dir))
    a = build_model("itemknn")
    a.fit(split)
    b = build_model("itemknn")
    b.load_state_dict(a.state_dict())
    h = split.test.histories[:5]
    assert np.array_equal(a.score(h).numpy(), b.score(h).numpy())


def test_itemknn_beats_popularity_on_synthetic(synthetic_dir):
    pop = train_and_evaluate(synthetic_dir, "popularity", TrainConfig()).metrics()
    knn = train_and_evaluate(synthetic_dir, "itemknn", TrainConfig()).metrics()
    assert knn["test"]["ndcg@10"] > 1.5 * pop["test"]["ndcg@10"]
    # it was selected on validation among its grid
    assert len(knn["selection"]["candidates"]) == 4
