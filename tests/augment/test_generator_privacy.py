"""The generator's privacy recipes: member-validation early stopping, DP-SGD, text conditioning."""

import math

import numpy as np
import pytest
import torch

from augrec.augment import pipeline as pipeline_mod
from augrec.augment.generator import (
    ReverseGenerator,
    TextConditionedNet,
    encoded_titles,
    item_text_features,
    text_features,
)
from augrec.augment.generator_fit import (
    DPConfig,
    _dp_setup,
    _LossForward,
    _per_user_grads_of,
    fit_generator,
    user_losses,
    user_roles,
)
from augrec.augment.outputs import build_report
from augrec.augment.pipeline import AugmentConfig, augment, generator_text_for
from augrec.augment.report import synthetic_report
from augrec.augment.report_html import render_html
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out, member_mask
from augrec.errors import ConfigError
from augrec.models.sasrec import SASRecConfig, pad_left

SMALL = {"hidden": 16, "max_len": 10, "dropout": 0.0}


@pytest.fixture(scope="module")
def dataset(synthetic_dir):
    return load_dataset(synthetic_dir)


@pytest.fixture(scope="module")
def split(dataset):
    return leave_one_out(dataset)


def _seqs(split, n=300):
    return [s for s in split.train if len(s) >= 2][:n]


def test_user_roles_take_stopping_users_from_members_only():
    members = member_mask(5000, 0.1, seed=3)
    trained, stopping = user_roles(members, 0.2, seed=3)
    assert not (trained & stopping).any()
    assert ((trained | stopping) == members).all()  # the privacy holdout is untouched
    assert 0.17 < stopping.sum() / members.sum() < 0.23
    none_trained, none_stopping = user_roles(members, 0.0, seed=3)
    assert not none_stopping.any() and (none_trained == members).all()


def test_early_stopping_restores_the_best_stopping_epoch(split, monkeypatch):
    gen = ReverseGenerator(split.n_items, SASRecConfig(**SMALL, epochs=6), seed=0)
    scripted = iter([-5.0, -4.0, -4.5, -4.6, -3.0, -3.0])  # best at epoch 2, stop at 4

    def fake_ll(seqs, batch_size=512):
        return np.full(len(seqs), next(scripted))

    monkeypatch.setattr(gen, "log_likelihood", fake_ll)
    snapshots = {}

    class Snap:
        def report(self, metrics, checkpoint=None):
            snapshots[metrics["epoch"]] = {k: v.clone() for k, v in gen.net.state_dict().items()}

    out = fit_generator(gen, _seqs(split, 60), _seqs(split, 20), patience=2, reporter=Snap())
    assert out["best_epoch"] == 2 and out["epochs_run"] == 4
    assert [round(h["stopping_loglik"], 1) for h in out["history"]] == [-5.0, -4.0, -4.5, -4.6]
    final = gen.net.state_dict()
    assert all(torch.equal(final[k], snapshots[2][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[4][k]) for k in final)


def test_pipeline_stopping_never_reads_the_privacy_holdout(split, monkeypatch):
    seen = {}
    real_fit = pipeline_mod.fit_generator

    def spy(gen, train, stopping_users=(), **kw):
        seen["train"], seen["stopping"] = train, list(stopping_users)
        calls = []
        original = gen.log_likelihood
        gen.log_likelihood = lambda seqs, batch_size=512: calls.append(seqs) or original(seqs)
        out = real_fit(gen, train, stopping_users, **kw)
        seen["scored"] = calls
        gen.log_likelihood = original
        return out

    monkeypatch.setattr(pipeline_mod, "fit_generator", spy)
    cfg = AugmentConfig(
        method="mle",
        generator={"epochs": 1, **SMALL},
        generator_stopping={"valid_share": 0.2, "patience": 1},
    )
    synth, info = augment(split, cfg, seed=4)
    holdout_ids = {id(split.train[u]) for u in np.flatnonzero(info["holdout"])}
    stopping_ids = {id(s) for s in seen["stopping"]}
    assert holdout_ids and stopping_ids
    assert not holdout_ids & {id(s) for s in seen["train"]}
    assert not holdout_ids & stopping_ids
    assert not stopping_ids & {id(s) for s in seen["train"]}
    scored = {id(s) for batch in seen["scored"] for s in batch}
    assert scored <= stopping_ids  # the stopping rule reads stopping users only
    assert info["holdout"].sum() == (~member_mask(len(split.train), 0.1, 4)).sum()
    assert info["mle"]["n_stopping_users"] == len([s for s in seen["stopping"] if len(s) >= 2])
    # the attack's members are the users the generator trained on, not the stopping users
    report = build_report(split, synth, info, seed=4)
    assert report["privacy"]["mia"]["n_members"] <= sum(
        1 for s, m in zip(split.train, info["members"], strict=True) if m and len(s) >= 2
    )


def test_per_user_gradients_match_one_user_at_a_time(split):
    gen = ReverseGenerator(split.n_items, SASRecConfig(**SMALL), seed=1)
    seqs = _seqs(split, 4)
    inputs = pad_left([s[:-1] for s in seqs], 10)
    targets = pad_left([s[1:] for s in seqs], 10)
    grads = _per_user_grads_of(_LossForward(gen.net), inputs, targets)
    gen.net.eval()  # dropout is 0: train and eval agree
    for b in range(len(seqs)):
        gen.net.zero_grad()
        user_losses(gen.net, inputs[b : b + 1], targets[b : b + 1])[0].backward()
        for name, p in gen.net.named_parameters():
            torch.testing.assert_close(grads[f"net.{name}"][b], p.grad, atol=1e-5, rtol=1e-4)


def test_dp_training_reports_a_finite_epsilon_within_the_target(split):
    gen = ReverseGenerator(split.n_items, SASRecConfig(**SMALL, epochs=1), seed=0)
    before = {k: v.clone() for k, v in gen.net.state_dict().items()}
    dp = DPConfig(epsilon=4.0, delta=1e-4, batch_size=30, micro_batch=30)
    out = fit_generator(gen, _seqs(split, 60), dp=dp)
    spent = out["dp"]["epsilon"]
    assert math.isfinite(spent) and 0 < spent <= dp.epsilon * 1.01
    assert out["dp"]["noise_multiplier"] > 0 and out["dp"]["steps"] == 2
    assert out["history"][0]["epsilon"] == spent
    assert any(not torch.equal(before[k], v) for k, v in gen.net.state_dict().items())


@pytest.mark.slow
def test_dp_training_learns_at_a_loose_epsilon(split):
    gen = ReverseGenerator(split.n_items, SASRecConfig(**SMALL, epochs=3, lr=3e-3), seed=0)
    dp = DPConfig(epsilon=50.0, delta=1e-4, batch_size=50, micro_batch=50)
    out = fit_generator(gen, _seqs(split, 200), dp=dp)
    eps = [h["epsilon"] for h in out["history"]]
    assert eps == sorted(eps) and eps[-1] <= dp.epsilon * 1.01
    losses = [h["loss"] for h in out["history"]]
    assert losses[-1] < losses[0]


def test_a_tighter_epsilon_needs_more_noise():
    net = torch.nn.Linear(2, 2)
    sigma = {
        eps: _dp_setup(net, 1000, 5, DPConfig(epsilon=eps, batch_size=100), 1e-3, 0)[
            "noise_multiplier"
        ]
        for eps in (1.0, 8.0)
    }
    assert sigma[1.0] > sigma[8.0] > 0


def test_dp_with_the_adversarial_phase_is_refused(split):
    cfg = AugmentConfig(method="gan", generator_dp={"epsilon": 4.0})
    with pytest.raises(ConfigError, match="generator_dp"):
        augment(split, cfg)


def test_text_features_are_whitened_deterministic_and_keep_empty_rows_zero():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(40, 12))
    vecs[[0, 7]] = 0.0  # padding and an untitled item
    a, b = text_features(vecs, 5), text_features(vecs.copy(), 5)
    assert a.shape == (40, 5) and np.array_equal(a, b)
    assert not a[[0, 7]].any()
    np.testing.assert_allclose(a[np.r_[1:7, 8:40]].std(0, ddof=1), 1.0, rtol=1e-5)


def test_title_embeddings_feed_a_deterministic_text_conditioned_generator(dataset, split, tmp_path):
    titles = encoded_titles(dataset.items, split.item_ids)
    assert titles is not None and titles[0] == "" and len(titles) == split.n_items + 1
    feats = item_text_features(titles, 8, cache_dir=tmp_path)
    assert np.array_equal(feats, item_text_features(titles, 8, cache_dir=tmp_path))
    cfg = SASRecConfig(**SMALL)
    g1 = ReverseGenerator(split.n_items, cfg, seed=2, item_text=feats)
    g2 = ReverseGenerator(split.n_items, cfg, seed=2, item_text=feats)
    assert isinstance(g1.net, TextConditionedNet)
    torch.testing.assert_close(g1.net.item_table(), g2.net.item_table())
    plain = ReverseGenerator(split.n_items, cfg, seed=2)
    # same id embeddings, plus the text projection: items described alike start close
    torch.testing.assert_close(g1.net.item_emb.weight, plain.net.item_emb.weight)
    assert not torch.allclose(g1.net.item_table(), plain.net.item_table())
    seqs = _seqs(split, 50)
    np.testing.assert_array_equal(g1.log_likelihood(seqs), g2.log_likelihood(seqs))


def test_a_catalog_without_titles_runs_as_before(dataset, split):
    untitled = dataset.items.drop(columns=["title"])
    assert encoded_titles(untitled, split.item_ids) is None
    on = AugmentConfig(
        method="mle", generator={"epochs": 1, **SMALL}, generator_text={"enabled": True}
    )
    off = AugmentConfig(method="mle", generator={"epochs": 1, **SMALL})
    assert generator_text_for(untitled, split, on) is None
    assert generator_text_for(dataset.items, split, off) is None
    a, _ = augment(split, on, seed=1, item_text=generator_text_for(untitled, split, on))
    b, _ = augment(split, off, seed=1)
    assert a.prefixes.keys() == b.prefixes.keys()
    assert all(np.array_equal(a.prefixes[u], b.prefixes[u]) for u in a.prefixes)


def test_report_shows_epsilon_beside_the_attack_and_copy_gates():
    real = [np.array([1, 2, 3, 4]), np.array([2, 3, 5, 6])] * 10
    dp = {"epsilon": 3.2, "target_epsilon": 4.0, "delta": 1e-5, "noise_multiplier": 1.1}
    r = synthetic_report(
        real,
        [np.array([7, 8])] * 5,
        [np.array([5, 6, 7])] * 5,
        n_items=9,
        member_scores=np.zeros(20),
        nonmember_scores=np.zeros(5),
        dp=dp,
    )
    summary = r["privacy"]["summary"]
    assert summary["epsilon"] == 3.2 and summary["attack_auc"] == 0.5
    assert summary["attack_auc_passed"] is True and "exact_copy_passed" in summary
    assert r["privacy"]["dp"]["delta"] == 1e-5
    page = render_html(r)
    assert "epsilon 3.2" in page and "Differential privacy of the generator" in page
    without = synthetic_report(real, [np.array([7, 8])] * 5, [np.array([5, 6, 7])] * 5, n_items=9)
    assert without["privacy"]["summary"]["epsilon"] is None
    assert "without differential privacy" in render_html(without)
