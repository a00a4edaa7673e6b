import pandas as pd
import pytest

from augrec.data.loaders import load_dataset
from augrec.data.validate import validate_interactions
from augrec.errors import DataValidationError


def kinds(exc: DataValidationError) -> dict[tuple[str, str], int]:
    return {(p.kind, p.field): p.count for p in exc.problems}


def test_every_problem_kind_reported_once_with_counts():
    df = pd.DataFrame(
        {
            "user_id": ["1", "1", "x", None, "2", "2"],
            "item_id": ["5", "5", "6", "7", "8.5", "9"],
            "timestamp": ["10", "10", "11", "12", "99999999999", "abc"],
        }
    )
    with pytest.raises(DataValidationError) as err:
        validate_interactions(df, "f.csv")
    got = kinds(err.value)
    assert got == {
        ("null", "user_id"): 1,
        ("type", "user_id"): 1,
        ("type", "item_id"): 1,
        ("type", "timestamp"): 1,
        ("range", "timestamp"): 1,
        ("duplicate", "user_id,item_id,timestamp"): 1,
    }
    text = str(err.value)
    assert "nothing was written" in text
    assert "row 4: user_id='x'" in text  # file row numbers: header = row 1, data from 2


def test_wrong_columns_named():
    with pytest.raises(DataValidationError, match="timestamp") as err:
        validate_interactions(pd.DataFrame({"user": [1], "item_id": [2]}), "f.csv")
    assert err.value.problems[0].kind == "columns"


def test_bad_event_type_and_weight():
    df = pd.DataFrame(
        {
            "user_id": [1, 1],
            "item_id": [1, 2],
            "timestamp": [1, 2],
            "event_type": ["view", "click"],
            "weight": [1.0, -2.0],
        }
    )
    with pytest.raises(DataValidationError) as err:
        validate_interactions(df, "f.csv")
    assert kinds(err.value) == {("value", "event_type"): 1, ("value", "weight"): 1}


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        load_dataset(tmp_path / "e.csv")
    (tmp_path / "h.csv").write_text("user_id,item_id,timestamp\n")
    with pytest.raises(DataValidationError, match="no interaction rows"):
        load_dataset(tmp_path / "h.csv")


def test_valid_frame_passes():
    df = pd.DataFrame({"user_id": [1], "item_id": [2], "timestamp": [3]})
    out = validate_interactions(df, "f.csv")
    assert out.timestamp.tolist() == [3]
