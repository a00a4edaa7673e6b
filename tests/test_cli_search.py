"""`augrec search`: build a run's index from its data, then query it (anonymous)."""

from augrec import rundir
from augrec.data.synthetic import SyntheticConfig, generate
from cli_helpers import run_cli


def test_search_builds_the_index_and_answers(tmp_path, capsys):
    interactions, items = generate(SyntheticConfig(users=80, items=60, seed=2))
    data = tmp_path / "shop"
    data.mkdir()
    interactions.to_csv(data / "interactions.csv", index=False)
    items.to_csv(data / "items.csv", index=False)
    run = tmp_path / "run"
    assert (
        run_cli("-q", "train", "--data", str(data), "--model", "popularity", "--out", str(run)) == 0
    )
    assert run_cli("-q", "search", "lipstick", "--model", str(run)) == 2  # no index yet
    assert "no search index" in capsys.readouterr().err.replace("\n", " ")
    code = run_cli(
        "-q", "search", "lipstick", "--model", str(run), "--build-from", str(data),
        "--feature-repo", str(tmp_path / "none"), "--k", "3",
    )  # fmt: skip
    assert code == 0
    assert (run / rundir.SEARCH_INDEX).exists()
    out = capsys.readouterr().out
    assert "Lipstick" in out and "anonymous" in out
