import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from augrec.augment.adversarial import Discriminator, prefix_log_probs
from augrec.augment.generator import ReverseGenerator, reverse_all
from augrec.augment.heuristic import OPERATORS, augment_one
from augrec.augment.pipeline import AugmentConfig, augment
from augrec.augment.synthetic_set import SyntheticSet, augmented_split, load, save
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out
from augrec.models.sasrec import SASRecConfig
from cli_helpers import run_cli

TINY = {
    "generator": {"epochs": 1, "hidden": 16},
    "adversarial": {"steps": 2, "select_every": 1, "batch_size": 16},
    "selector": {"model": "itemknn", "params": {}},
    "virtual_users": 10,
}


@pytest.fixture(scope="module")
def split(synthetic_dir):
    return leave_one_out(load_dataset(synthetic_dir))


def test_generator_shapes_sampling_and_likelihood(split):
    gen = ReverseGenerator(split.n_items, SASRecConfig(hidden=16, max_len=10, epochs=1))
    assert reverse_all([np.array([1, 2, 3])])[0].tolist() == [3, 2, 1]
    assert gen.step_logits(torch.tensor([[0, 3, 2]])).shape == (1, split.n_items + 1)
    hist = [np.array([5, 6]), np.array([7])]
    banned = [np.array([8, 9]), np.array([], dtype=np.int64)]
    out = gen.sample_prefixes(
        hist, [4, 2], banned=banned, generator=torch.Generator().manual_seed(0)
    )
    assert [len(p) for p in out] == [4, 2]
    for p, h, b in zip(out, hist, banned, strict=True):
        assert len(set(p)) == len(p)  # no repeats
        assert not set(p) & set(h) and not set(p) & set(b) and 0 not in p
    virtual = gen.sample_virtual(np.array([11, 12]), length=3)
    assert [v[-1] for v in virtual] == [11, 12] and all(len(v) == 3 for v in virtual)
    ll = gen.log_likelihood([np.array([1, 2, 3]), np.array([4, 5])])
    assert ll.shape == (2,) and (ll < 0).all()
    # at initialisation every item is about equally likely
    assert ll.mean() == pytest.approx(-np.log(split.n_items), rel=0.1)


def test_mle_pretraining_lowers_the_loss(split):
    gen = ReverseGenerator(split.n_items, SASRecConfig(hidden=16, max_len=10, epochs=3))
    result = gen.fit_mle(split.train)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]


def test_discriminator_and_policy_log_probs(split):
    disc = Discriminator(split.n_items, hidden=16, prefix_len=2, suffix_len=4)
    prefix = torch.tensor([[1, 2], [3, 4]])
    suffix = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 10]])
    assert disc(prefix, suffix).shape == (2,)
    gen = ReverseGenerator(split.n_items, SASRecConfig(hidden=16, max_len=10))
    logp, entropy = prefix_log_probs(gen, [np.array([5, 6]), np.array([7, 8])], prefix)
    assert logp.shape == (2,) and bool((logp < 0).all())
    assert float(entropy.mean().detach()) == pytest.approx(np.log(split.n_items), rel=0.1)
    logp.sum().backward()  # gradients reach the generator
    assert gen.net.item_emb.weight.grad is not None


@pytest.mark.parametrize("op", OPERATORS)
def test_heuristic_operators_keep_items_unique(op):
    rng = np.random.default_rng(0)
    neighbour = np.arange(20) + 1
    neighbour[-1] = 0
    seq = np.array([1, 2, 3, 4, 5, 6])
    out = augment_one(seq, op, neighbour, rng, rate=0.5)
    assert len(out) >= 2 and len(set(out)) == len(out)


def heldout_by_user(split):
    held = {}
    for es in (split.valid, split.test):
        for u, t in zip(es.users, es.targets, strict=True):
            held.setdefault(int(u), set()).add(int(t))
    return held


@pytest.mark.parametrize("method", ["heuristic", "mle", "gan"])
def test_no_heldout_item_reaches_training_or_synthetic_data(split, method):
    synth, _ = augment(split, AugmentConfig(method=method, **TINY), seed=0)
    assert synth.n_interactions > 0
    aug = augmented_split(split, synth)
    held = heldout_by_user(split)
    for u in range(len(split.train)):
        assert not held.get(u, set()) & set(aug.train[u].tolist()), u
    # synthetic users never enter validation or test; real targets are untouched
    assert aug.valid is split.valid and aug.test is split.test
    assert len(aug.train) == len(split.train) + len(synth.extra)
    assert synth.share(split) <= 0.3 + 1e-9


def test_the_leak_check_catches_a_leak(split):
    u, target = int(split.test.users[0]), int(split.test.targets[0])
    bad = SyntheticSet(method="mle", prefixes={u: np.array([target])})
    with pytest.raises(AssertionError, match="held-out"):
        augmented_split(split, bad)


def test_save_load_round_trip_in_original_ids(split, tmp_path):
    synth, _ = augment(split, AugmentConfig(method="mle", **TINY), seed=0)
    synth.meta["protocol"] = split.protocol
    save(synth, split, tmp_path)
    df = pd.read_parquet(tmp_path / "synthetic.parquet")
    assert set(df["kind"]) == {"prefix", "virtual"}
    assert df["item_id"].isin(split.item_ids[1:]).all()
    back = load(tmp_path, split)
    assert back.prefixes.keys() == synth.prefixes.keys()
    for u in synth.prefixes:
        assert np.array_equal(back.prefixes[u], synth.prefixes[u])
    assert sorted(map(tuple, back.extra)) == sorted(map(tuple, synth.extra))


@pytest.mark.e2e
def test_one_epoch_gan_end_to_end(tmp_path, synthetic_dir):
    cfg = tmp_path / "aug.yaml"
    cfg.write_text(json.dumps({"augment": TINY}))  # JSON is YAML
    out = tmp_path / "gan"
    assert (
        run_cli(
            "augment",
            "--data",
            str(synthetic_dir),
            "--method",
            "gan",
            "--out",
            str(out),
            "--config",
            str(cfg),
        )
        == 0
    )
    names = {p.name for p in out.iterdir()}
    assert {
        "synthetic.parquet",
        "synthetic.json",
        "synthetic_report.json",
        "synthetic_report.html",
        "generator.pt",
        "training.json",
    } <= names
    meta = json.loads((out / "synthetic.json").read_text())
    assert meta["method"] == "gan" and "selected_step" in meta
    run = tmp_path / "run"
    assert (
        run_cli(
            "train",
            "--data",
            str(synthetic_dir),
            "--model",
            "itemknn",
            "--out",
            str(run),
            "--augment",
            str(out),
        )
        == 0
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["augmentation"]["method"] == "gan"
    assert metrics["augmentation"]["synthetic_interactions"] == meta["synthetic_interactions"]


def test_method_none_writes_an_empty_set_with_a_passing_report(tmp_path, synthetic_dir):
    out = tmp_path / "none"
    assert (
        run_cli(
            "augment",
            "--data",
            str(synthetic_dir),
            "--method",
            "none",
            "--out",
            str(out),
        )
        == 0
    )
    report = json.loads((out / "synthetic_report.json").read_text())
    assert report["empty"] and report["passed"]
    assert json.loads((out / "synthetic.json").read_text())["synthetic_interactions"] == 0


def test_defaults_are_the_light_configuration():
    """The shipped defaults are the least harmful measured setting (docs/benchmarks.md)."""
    import yaml

    from augrec.augment.pipeline import AugmentConfig

    light = yaml.safe_load(
        (
            Path(__file__).parents[2] / "benchmarks/configs/augmentation-beauty-light.yaml"
        ).read_text()
    )["augment"]
    assert AugmentConfig(**light) == AugmentConfig()


@pytest.mark.parametrize("allow", [False, True])
def test_failed_privacy_gate_exits_non_zero_unless_allowed(
    tmp_path, synthetic_dir, monkeypatch, capsys, allow
):
    from augrec.augment import report

    monkeypatch.setattr(report, "privacy_failures", lambda r: ["mia.attack_auc 0.70 > 0.55"])
    out = tmp_path / "none"
    argv = ["augment", "--data", str(synthetic_dir), "--method", "none", "--out", str(out)]
    code = run_cli(*argv, *(["--allow-privacy-failure"] if allow else []))
    captured = capsys.readouterr()
    assert "FAILED: mia.attack_auc 0.70 > 0.55" in captured.out
    assert code == (0 if allow else 2)
    if not allow:
        assert "privacy gate failed" in captured.err and "--allow-privacy-failure" in captured.err
    assert (out / "synthetic_report.html").exists()  # kept for inspection either way
