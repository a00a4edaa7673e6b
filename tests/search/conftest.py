import pytest

from augrec.data.schema import Dataset, normalise_interactions
from augrec.data.splits import leave_one_out
from augrec.data.synthetic import SyntheticConfig, generate


@pytest.fixture(scope="session")
def demo():
    """A small demo catalog with titles, its dataset and split."""
    interactions, items = generate(SyntheticConfig(users=150, items=240, seed=3))
    ds = Dataset("demo", normalise_interactions(interactions), items)
    return ds, leave_one_out(ds)


@pytest.fixture(scope="session")
def demo_index(demo, tmp_path_factory):
    from augrec.search.catalog import catalog_from_dataset
    from augrec.search.index import SearchIndex

    ds, split = demo
    cache = tmp_path_factory.mktemp("textcache")
    return SearchIndex.build(catalog_from_dataset(ds, split.item_ids), cache_dir=cache)
