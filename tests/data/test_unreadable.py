"""Binary, compressed, truncated or UTF-16 input is a clear error naming the file, exit 2."""

import gzip

import pandas as pd
import pytest

from augrec.data.loaders import load_dataset
from augrec.errors import DataValidationError
from cli_helpers import run_cli

CSV = "user_id,item_id,timestamp\n1,2,3\n1,3,4\n2,2,5\n"


def _binary(d):
    p = d / "binary.csv"
    p.write_bytes(bytes(range(256)) * 4)
    return p, "binary data"


def _truncated_parquet(d):
    p = d / "interactions.parquet"
    pd.DataFrame({"user_id": [1, 1, 2], "item_id": [2, 3, 2], "timestamp": [3, 4, 5]}).to_parquet(p)
    p.write_bytes(p.read_bytes()[:-20])
    return p, "truncated"


def _not_parquet(d):
    p = d / "fake.parquet"
    p.write_text(CSV)
    return p, "not a parquet file"


def _gzip(d):
    p = d / "log.csv"
    p.write_bytes(gzip.compress(CSV.encode()))
    return p, "gzip"


def _utf16(d):
    p = d / "log.csv"
    p.write_text(CSV, encoding="utf-16")
    return p, "UTF-16"


def _latin1(d):
    p = d / "log.csv"
    p.write_bytes((CSV + "3,4,\xe9t\xe9\n").encode("latin-1"))
    return p, "not UTF-8"


CASES = [_binary, _truncated_parquet, _not_parquet, _gzip, _utf16, _latin1]


@pytest.mark.parametrize("make", CASES, ids=lambda f: f.__name__.strip("_"))
def test_loader_names_the_file_and_the_fault(tmp_path, make):
    path, what = make(tmp_path)
    with pytest.raises(DataValidationError) as err:
        load_dataset(path)
    assert str(path) in str(err.value)
    assert what in str(err.value)
    assert "Traceback" not in str(err.value)


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "validate", "{p}"],
        ["train", "--data", "{p}", "--model", "popularity", "--out", "{o}"],
        ["augment", "--data", "{p}", "--method", "heuristic", "--out", "{o}"],
        ["features", "ingest", "--data", "{p}", "--repo", "{o}"],
    ],
    ids=["validate", "train", "augment", "ingest"],
)
@pytest.mark.parametrize("make", [_binary, _truncated_parquet, _gzip, _utf16])
def test_every_command_exits_2_with_the_message(tmp_path, capsys, argv, make):
    path, what = make(tmp_path)
    out = tmp_path / "out"
    code = run_cli(*(a.format(p=path, o=out) for a in argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert what in err and path.name in err
    assert not out.exists()


def test_missing_path_blames_no_option(tmp_path, capsys):
    assert run_cli("data", "validate", str(tmp_path / "nope.csv")) == 2
    err = capsys.readouterr().err
    assert "nope.csv" in err and "no such file" in err
    assert "--data" not in err


def test_problem_counts_are_pluralised():
    from augrec.errors import Problem

    assert Problem("columns", "item_id", 1, "bad").render().endswith("(1 row)")
    assert Problem("columns", "item_id", 2, "bad").render().endswith("(2 rows)")
