"""`augrec gate` and `augrec models ...` end to end, in-process, on a temporary BENTOML_HOME."""

import json
import shutil

import pytest

from cli_helpers import run_cli


def test_gate_exit_codes_and_register_require_gate(runs, home, tmp_path, capsys):
    bad = tmp_path / "bad"
    good = tmp_path / "good"
    shutil.copytree(runs["sasrec0"], bad)
    shutil.copytree(runs["itemknn"], good)

    assert run_cli("gate", "--candidate", str(bad)) == 1
    out = capsys.readouterr().out
    assert "FAILED: floor" in out and "does not beat popularity" in out
    assert json.loads((bad / "gate.json").read_text())["failed"][0] == "floor"
    assert run_cli("models", "register", str(bad), "--require-gate") == 2
    assert "the gate failed" in capsys.readouterr().err

    assert run_cli("gate", "--candidate", str(good)) == 0
    assert "PASSED" in capsys.readouterr().out
    assert run_cli("models", "register", str(good), "--require-gate") == 0
    tag = capsys.readouterr().out.split()[-1]
    assert tag.startswith("augrec-shop-itemknn:")

    # a gate.json from another model file does not count
    other = tmp_path / "other"
    shutil.copytree(runs["popularity"], other)
    shutil.copy(good / "gate.json", other / "gate.json")
    assert run_cli("models", "register", str(other), "--require-gate") == 2
    assert "different model file" in capsys.readouterr().err


def test_models_commands_end_to_end(runs, home, tmp_path, capsys):
    assert run_cli("models", "register", str(runs["popularity"])) == 0
    first = capsys.readouterr().out.split()[-1]
    assert run_cli("models", "register", str(runs["itemknn"])) == 0
    second = capsys.readouterr().out.split()[-1]
    assert run_cli("models", "register", str(runs["itemknn"])) == 0
    assert "already registered" in capsys.readouterr().out

    assert run_cli("models", "promote", first) == 0
    assert run_cli("models", "promote", second.split(":")[1], "--note", "beats popularity") == 0
    assert f"-> {second}" in capsys.readouterr().out
    assert run_cli("models", "list") == 0
    listing = capsys.readouterr().out
    assert first in listing and second in listing and "production" in listing

    assert run_cli("models", "show", "production") == 0
    shown = capsys.readouterr().out
    manifest = json.loads((runs["itemknn"] / "manifest.json").read_text())
    for needle in (
        second,
        manifest["run_id"],
        manifest["data"]["fingerprint"],
        "NEW_RUN_DIR",  # the reproduce line (whole in the --json check below)
        "interactions.parquet",
        '"neighbors": 50',
        "integrity",
        "ndcg@10",
    ):
        assert needle in shown, needle
    assert run_cli("models", "show", second, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["manifest"] == manifest and doc["aliases"] == ["production"]
    assert doc["integrity"] == "ok" and doc["metrics"]["test"]["ndcg@10"] > 0

    assert run_cli("models", "rollback") == 0
    assert f"-> {first}" in capsys.readouterr().out
    assert run_cli("models", "rollback") == 2
    assert "no previous version" in capsys.readouterr().err
    assert run_cli("models", "aliases") == 0
    assert "beats popularity" in capsys.readouterr().out

    exports = tmp_path / "exports"
    assert run_cli("models", "export", second, str(exports)) == 0
    capsys.readouterr()
    (exported,) = exports.iterdir()
    assert run_cli("models", "import", f"file://{exported}", "--home", str(tmp_path / "h2")) == 0
    assert f"imported {second}" in capsys.readouterr().out
    assert run_cli("models", "show", second, "--home", str(tmp_path / "h2")) == 0

    assert run_cli("models", "show", "nosuch") == 2


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["models"], "immutable versions"),
        (["models", "list"], "List every registered version"),
        (["models", "show"], "full lineage"),
        (["models", "register"], "--require-gate"),
        (["models", "promote"], "atomically"),
        (["models", "rollback"], "before its last promote"),
        (["models", "aliases"], "history"),
        (["models", "export"], "bentomodel"),
        (["models", "import"], "exported version"),
        (["gate"], "serving smoke test"),
    ],
)
def test_every_command_explains_itself(args, words, capsys):
    assert run_cli(*args, "--help") == 0
    assert words in " ".join(capsys.readouterr().out.replace("│", " ").split())
