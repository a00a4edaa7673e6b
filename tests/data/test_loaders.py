import json

import pandas as pd
import pytest

from augrec.data.loaders import detect_format, load_dataset
from augrec.errors import DataValidationError


@pytest.fixture
def amazon_dir(tmp_path):
    (tmp_path / "Toy.txt").write_text("10 5 7 9\n20 7 5 11 12\n")
    (tmp_path / "Toy_time_org_rank.txt").write_text("10 100 200 200\n20 50 60 70 80\n")
    (tmp_path / "Toy_item2attributes.json").write_text(
        json.dumps({"5": [1, 2], "7": [3], "9": [1], "11": [], "12": [2]})
    )
    return tmp_path


def test_amazon_sequences_keep_ids_order_times_and_attributes(amazon_dir):
    ds = load_dataset(amazon_dir / "Toy.txt")
    assert ds.source_format == "amazon-seq"
    assert ds.has_time
    u10 = ds.interactions[ds.interactions.user_id == 10]
    assert u10.item_id.tolist() == [5, 7, 9]
    assert u10.timestamp.tolist() == [100, 200, 200]
    assert ds.item_attributes[5] == [1, 2]
    assert set(ds.items.item_id) == {5, 7, 9, 11, 12}


def test_amazon_without_time_file_uses_positions(tmp_path):
    (tmp_path / "seq.txt").write_text("1 3 2 1\n")
    ds = load_dataset(tmp_path / "seq.txt")
    assert not ds.has_time
    assert ds.interactions.item_id.tolist() == [3, 2, 1]  # file order kept, ids untouched
    assert ds.interactions.timestamp.tolist() == [0, 1, 2]


def test_amazon_time_file_misaligned_is_an_error(amazon_dir):
    (amazon_dir / "Toy_time_org_rank.txt").write_text("10 100 200\n20 50 60 70 80\n")
    with pytest.raises(DataValidationError, match="alignment"):
        load_dataset(amazon_dir / "Toy.txt")


def test_amazon_time_going_backwards_is_an_error(amazon_dir):
    (amazon_dir / "Toy_time_org_rank.txt").write_text("10 300 200 200\n20 50 60 70 80\n")
    with pytest.raises(DataValidationError, match=r"\[order\]"):
        load_dataset(amazon_dir / "Toy.txt")


def test_augrec_csv_with_iso_times_and_items_table(tmp_path):
    pd.DataFrame(
        {
            "user_id": [3, 3, 4],
            "item_id": [100, 200, 100],
            "timestamp": ["2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z", "1704067200"],
            "event_type": ["view", "purchase", "cart"],
        }
    ).to_csv(tmp_path / "interactions.csv", index=False)
    pd.DataFrame({"item_id": [100, 200], "category": ["a", "b"], "price": [1.5, 2]}).to_csv(
        tmp_path / "items.csv", index=False
    )
    ds = load_dataset(tmp_path)  # a directory works too
    u3 = ds.interactions[ds.interactions.user_id == 3]
    assert u3.item_id.tolist() == [200, 100]  # sorted by time
    assert u3.timestamp.tolist() == [1704067200, 1704153600]
    assert ds.interactions.weight.tolist() == [1.0, 1.0, 1.0]
    assert ds.items.category.tolist() == ["a", "b"]


def test_parquet_round_trip(tmp_path):
    df = pd.DataFrame({"user_id": [1, 1], "item_id": [9, 8], "timestamp": [5, 6]})
    df.to_parquet(tmp_path / "x.parquet")
    ds = load_dataset(tmp_path / "x.parquet")
    assert ds.interactions.item_id.tolist() == [9, 8]
    assert ds.interactions.event_type.tolist() == ["purchase", "purchase"]


def test_diginetica_purchases(tmp_path):
    (tmp_path / "train-purchases.csv").write_text(
        "sessionId;userId;timeframe;eventdate;ordernumber;itemId\n"
        "1;7;1000;2016-05-06;1;55\n"
        "2;NA;5;2016-05-06;2;66\n"
        "3;7;0;2016-05-07;3;77\n"
        "3;7;0;2016-05-07;3;77\n"
    )
    (tmp_path / "product-categories.csv").write_text("itemId;categoryId\n55;1\n66;2\n77;3\n")
    path = tmp_path / "train-purchases.csv"
    assert detect_format(path) == "diginetica"
    ds = load_dataset(path)
    assert ds.interactions.user_id.unique().tolist() == [7]  # anonymous session dropped
    assert ds.interactions.item_id.tolist() == [55, 77]  # repeated order line counted once
    assert ds.interactions.timestamp.iloc[0] == 1462492801  # 2016-05-06 + 1 s
    assert set(ds.items.item_id) == {55, 77}


def test_real_beauty_counts(beauty_file):
    ds = load_dataset(beauty_file)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (22363, 12101, 198502)
    assert ds.has_time and len(ds.item_attributes) == 12101


def test_real_diginetica_loads(beauty_file):
    path = beauty_file.parents[1] / "diginetica-purchases" / "train-purchases.csv"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    ds = load_dataset(path)
    assert ds.n_users == 4425


def test_titles_beside_an_amazon_file_fill_the_items_table(amazon_dir):
    (amazon_dir / "Toy_titles.tsv").write_text(
        'item_id\tasin\ttitle\n5\tA1\tOPI "Big Apple Red" Nail Lacquer, 0.5 oz\n7\tA2\t\n'
    )
    ds = load_dataset(amazon_dir / "Toy.txt")
    titles = ds.items.set_index("item_id")["title"]
    assert titles[5] == 'OPI "Big Apple Red" Nail Lacquer, 0.5 oz'  # quotes kept verbatim
    assert titles[7] == "" and titles[9] == ""  # empty and missing titles are empty text
    assert amazon_dir / "Toy_titles.tsv" in ds.files


def test_explicit_titles_win_and_work_for_any_format(amazon_dir, tmp_path):
    (amazon_dir / "Toy_titles.tsv").write_text("item_id\ttitle\n5\tbeside\n")
    other = tmp_path / "elsewhere.csv"
    other.write_text("item_id,title\n5,explicit\n")
    ds = load_dataset(amazon_dir / "Toy.txt", titles=other)
    assert ds.items.set_index("item_id")["title"][5] == "explicit"
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,name\n5,x\n")
    with pytest.raises(DataValidationError, match="title"):
        load_dataset(amazon_dir / "Toy.txt", titles=bad)


def test_items_table_title_column_is_kept(tmp_path):
    pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]}).to_csv(
        tmp_path / "interactions.csv", index=False
    )
    pd.DataFrame({"item_id": [1, 2, 3], "title": ["a lipstick", "b", "c"]}).to_csv(
        tmp_path / "items.csv", index=False
    )
    ds = load_dataset(tmp_path)
    assert ds.items["title"].tolist() == ["a lipstick", "b", "c"]
