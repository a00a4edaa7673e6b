import pandas as pd

from augrec.data.synthetic import SyntheticConfig, generate
from augrec.data.validate import validate_interactions


def test_seeded_and_valid():
    a, items_a = generate(SyntheticConfig(users=300, items=200, seed=3))
    b, _ = generate(SyntheticConfig(users=300, items=200, seed=3))
    c, _ = generate(SyntheticConfig(users=300, items=200, seed=4))
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    validate_interactions(a, "synthetic")
    assert set(items_a.columns) == {"item_id", "category", "brand", "price", "title"}
    assert (items_a.price > 0).all()


def test_shape_of_the_data():
    df, _ = generate(SyntheticConfig(users=2000, items=500, seed=0))
    lengths = df.groupby("user_id").size()
    assert lengths.min() >= 4
    assert lengths.max() > 4 * lengths.median()  # heavy-tailed activity
    assert not df.duplicated(["user_id", "item_id"]).any()  # no repeat purchases
    pop = df.item_id.value_counts()
    top = pop.head(len(pop) // 5).sum() / pop.sum()
    assert top > 0.4  # the head 20% of items holds a large share
    assert df.groupby("user_id").timestamp.apply(lambda t: t.is_monotonic_increasing).all()
