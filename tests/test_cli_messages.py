"""Help and messages read cleanly: wrapped paragraphs, no `<bool>` on flags, plain counts."""

import pytest
from typer.testing import CliRunner

from cli_helpers import run_cli


@pytest.fixture
def help_text(monkeypatch):
    from augrec.cli.main import app

    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERM", "dumb")

    def render(*args: str) -> str:
        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0, result.output
        return result.output

    return render


@pytest.mark.parametrize("args", [[], ["train"], ["augment"], ["data"], ["features"]])
def test_flags_show_no_type_placeholder(help_text, args):
    assert "<bool>" not in help_text(*args)


def test_docstring_paragraphs_are_reflowed(help_text):
    text = " ".join(help_text("train").split())
    # Source-wrapped after "timings)," — rendered as one paragraph, re-wrapped by rich.
    assert "timings), OUT/recommendations.parquet" in text
    assert "inspect" not in help_text("data")


def test_validate_prints_the_path_as_a_line(tmp_path, capsys):
    out = tmp_path / "a-rather-long-directory-name" / "demo"
    assert run_cli("data", "generate", "--users", "30", "--items", "50", "-o", str(out)) == 0
    capsys.readouterr()
    assert run_cli("data", "validate", str(out)) == 0
    stdout = capsys.readouterr().out
    assert f"{out}: valid\n" in stdout


def test_generate_reports_catalog_and_used_items(tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "demo"
    assert run_cli("data", "generate", "--users", "30", "--items", "200", "-o", str(out)) == 0
    logged = " ".join(capsys.readouterr().err.split())
    used = pd.read_parquet(out / "interactions.parquet")["item_id"].nunique()
    assert used < 200  # the premise: a sparse log leaves catalog items unused
    assert f"200 catalog items, {used} with interactions" in logged
