"""A recipe as config: `augrec train --config` generates, selects on validation, writes it all."""

import json
from pathlib import Path

import pytest
import yaml

from augrec.config import TrainConfig, load_train_config
from augrec.data.synthetic import SyntheticConfig, generate
from augrec.errors import ConfigError
from augrec.training.run import train_and_evaluate
from cli_helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
SMALL = {"hidden": 16, "epochs": 1, "eval_every": 1, "patience": 1, "max_len": 20}
AUGMENT = {
    "method": "mle",
    "max_history": 5,
    "prepend": 1,
    "generator": {"epochs": 1, "hidden": 16, "max_len": 20},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recipe-data")
    interactions, items = generate(SyntheticConfig(users=200, items=100, seed=0))
    interactions.to_csv(out / "interactions.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    return out


@pytest.fixture(scope="module")
def untitled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recipe-data-untitled")
    interactions, _ = generate(SyntheticConfig(users=200, items=100, seed=0))
    interactions.to_csv(out / "interactions.csv", index=False)
    return out


@pytest.mark.slow  # generation, two stages and their refit: ~15 s alone, a minute when loaded
def test_recipe_config_runs_whole_and_writes_the_synthetic_report(tiny, tmp_path):
    cfg = {
        "model": {**SMALL, "finetune": True, "text": "fuse"},
        "refit": True,
        "eval": {"noisy_shares": [0.1, 0.2]},
        "augment": AUGMENT,
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    code = run_cli(
        "train", "--data", str(tiny), "--model", "sasrec", "--out", str(out), "--config", str(path)
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    aug = metrics["augmentation"]
    assert aug["in_process"] and aug["method"] == "mle" and aug["synthetic_interactions"] > 0
    for name in ("synthetic.parquet", "synthetic_report.json", "synthetic_report.html"):
        assert (out / "augmentation" / name).exists(), name
    assert set(metrics["test_noisy"]) == {"0.1", "0.2"}
    assert metrics["test_noisy"]["0.2"]["users"] == metrics["test"]["users"]
    best = metrics["selection"]["candidates"][0]
    assert best["text"]["used"] is True and "finetune" in best and "pretrain" in best
    assert {"epochs", "finetune_epochs"} <= set(metrics["refit"])
    assert {h["stage"] for h in metrics["history"]} == {"pretrain", "finetune"}


def test_recipe_without_titles_runs_without_text(untitled):
    cfg = TrainConfig(model={**SMALL, "text": "fuse"})
    run = train_and_evaluate(untitled, "sasrec", cfg, seed=0)
    assert run.candidates[0]["text"] == {
        "mode": "fuse",
        "used": False,
        "reason": "no item titles",
    }


def test_grid_is_chosen_on_short_users_validation(untitled):
    cfg = TrainConfig(
        model=SMALL,
        selection={"grid": {"adv_eps": [0.0, 0.5], "dropout": [0.1, 0.3]}, "users": "short"},
    )
    run = train_and_evaluate(untitled, "sasrec", cfg, seed=0)
    tried = [(c["params"]["adv_eps"], c["params"]["dropout"]) for c in run.candidates]
    assert tried == [(0.0, 0.1), (0.0, 0.3), (0.5, 0.1), (0.5, 0.3)]  # crossed with model:
    key = "valid_ndcg@10_history<=5"
    best = max(run.candidates, key=lambda c: c[key])
    assert run.params == best["params"]


def test_bad_recipe_values_name_the_field(tmp_path, untitled):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"augment": {"method": "gan", "prepend": 0}}))
    with pytest.raises(ConfigError, match="augment.*prepend"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="selection.grid: 'adv_epsilon'"):
        train_and_evaluate(
            untitled, "sasrec", TrainConfig(model=SMALL, selection={"grid": {"adv_epsilon": [1]}})
        )
    bad.write_text(yaml.safe_dump({"eval": {"noisy_shares": [0.1, 1.5]}}))
    with pytest.raises(ConfigError, match="noisy_shares"):
        load_train_config(bad)


def test_committed_best_recipe_is_a_valid_train_config_and_says_its_evidence():
    path = REPO / "benchmarks" / "configs" / "augmentation-best.yaml"
    cfg = load_train_config(path)
    assert cfg.augment is not None and cfg.model.get("finetune") is True
    assert "EVIDENCE" in path.read_text()
