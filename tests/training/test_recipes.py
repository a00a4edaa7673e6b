"""Recipes on tiny data: synthetic-target weights, two-stage training, adversarial loss."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augrec.augment.synthetic_set import SyntheticSet, augmented_split
from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out
from augrec.models import build_model
from augrec.models.sasrec import SASRecConfig, SASRecNet, adversarial_loss, sequence_loss
from augrec.training.loop import train_sequences
from augrec.training.recipes import fit_two_stage, real_only, synthetic_target_weights


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """A tiny catalog: these tests check exact arithmetic and weights, not quality."""
    from augrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("recipes")
    interactions, _ = generate(SyntheticConfig(users=150, items=60, seed=0))
    interactions.to_csv(out / "interactions.csv", index=False)
    return leave_one_out(load_dataset(out))


def prefix_for(split, u, k):
    """k items user u never has in the real log (a valid synthetic prefix)."""
    real = set(split.train[u].tolist())
    for es in (split.valid, split.test):
        real |= set(es.targets[es.users == u].tolist())
    return np.array([i for i in range(1, split.n_items + 1) if i not in real][:k])


CFG = SASRecConfig(hidden=16, max_len=6, dropout=0.0)
INPUTS = torch.tensor([[0, 1, 2, 3], [0, 0, 4, 5]])
TARGETS = torch.tensor([[0, 2, 3, 4], [0, 0, 5, 6]])
# 1 marks a synthetic target: positions (0, 1) and (1, 3)
SYNTH = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.bool)


def tiny_net():
    torch.manual_seed(0)
    return SASRecNet(20, CFG, None).eval()


def per_target_ce(net):
    """Cross-entropy of every target position by hand, [B, L] (0 at padding)."""
    table = net.item_table()
    logits = net(INPUTS, table) @ table.T
    logits[..., 0] = -torch.inf
    ce = F.cross_entropy(logits.reshape(-1, 21), TARGETS.reshape(-1), reduction="none")
    return ce.reshape(TARGETS.shape) * (TARGETS > 0)


@pytest.mark.parametrize("w", [0.0, 0.3, 1.0, 2.5])
def test_weight_scales_synthetic_targets_contribution(w):
    net = tiny_net()
    ce = per_target_ce(net).detach()
    real, syn = (TARGETS > 0) & ~SYNTH, SYNTH
    expected = (ce[real].sum() + w * ce[syn].sum()) / (real.sum() + w * syn.sum())
    weights = torch.where(SYNTH, torch.tensor(w), torch.tensor(1.0))
    got = sequence_loss(net, INPUTS, TARGETS, CFG, weights=weights)
    assert float(got.detach()) == pytest.approx(float(expected), rel=1e-6)
    if w == 1.0:  # weight 1 is the unweighted mean
        assert float(got) == pytest.approx(float(sequence_loss(net, INPUTS, TARGETS, CFG)))
    if w == 0.0:  # weight 0 is the loss with the synthetic targets removed
        real_only_targets = TARGETS.masked_fill(SYNTH, 0)
        assert float(got) == pytest.approx(
            float(sequence_loss(net, INPUTS, real_only_targets, CFG)), rel=1e-6
        )
    all_zero = sequence_loss(net, INPUTS, TARGETS, CFG, weights=torch.zeros(2, 4))
    assert float(all_zero) == 0.0  # a batch with nothing weighted contributes nothing


def test_weights_follow_the_synthetic_positions(split):
    synth = SyntheticSet(
        method="mle",
        prefixes={0: prefix_for(split, 0, 2)},
        extra=[np.array([1, 2, 3])],
    )
    aug = augmented_split(split, synth)
    assert aug.train_synthetic[0][:2].all() and not aug.train_synthetic[0][2:].any()
    assert aug.train_synthetic[-1].all() and len(aug.train) == len(split.train) + 1
    assert not any(m.any() for m in aug.train_synthetic[1 : len(split.train)])
    w = synthetic_target_weights(aug, 0.25)
    assert w[0][:2].tolist() == [0.25, 0.25] and set(w[0][2:].tolist()) == {1.0}
    assert synthetic_target_weights(aug, 1.0) is None  # the unweighted path, bit for bit
    real = real_only(aug)
    assert all(np.array_equal(a, b) for a, b in zip(real, split.train, strict=False))
    assert len(real[-1]) == 0


def test_weight_zero_trains_exactly_like_real_only(split):
    """Virtual users weighted 0 change nothing: the same weights as training without them."""
    rng = np.random.default_rng(0)
    extra = [rng.integers(1, split.n_items + 1, size=5) for _ in range(60)]
    aug = augmented_split(split, SyntheticSet(method="mle", extra=extra))
    cfg = {"epochs": 1, "hidden": 16, "max_len": 10, "dropout": 0.2}

    def fit(s, **extra_cfg):
        torch.manual_seed(0)
        model = build_model("sasrec", {**cfg, **extra_cfg}, seed=0)
        model.fit(s)
        return model.net.state_dict()

    real = fit(split)
    zero = fit(aug, synthetic_weight=0.0)
    one = fit(aug, synthetic_weight=1.0)
    assert all(torch.equal(real[k], zero[k]) for k in real)
    assert not all(torch.equal(real[k], one[k]) for k in real)


def test_two_stage_fine_tunes_from_the_best_pretraining_checkpoint(split):
    """Pre-training validates best at epoch 2 of 3: fine-tuning must start from epoch 2."""
    synth = SyntheticSet(
        method="mle", prefixes={u: prefix_for(split, u, 1) for u in range(0, 150, 3)}
    )
    aug = augmented_split(split, synth)
    cfg = SASRecConfig(
        hidden=16, max_len=10, dropout=0.0, epochs=3, eval_every=1, patience=5, finetune_epochs=1
    )
    scores = iter([0.5, 0.9, 0.3, 0.95])  # pre-training epochs 1-3, then fine-tuning epoch 1

    class Keep:
        def __init__(self):
            self.states = []

        def report(self, metrics, checkpoint=None):
            self.states.append(checkpoint["net"])

    keep = Keep()
    torch.manual_seed(0)
    net = SASRecNet(split.n_items, cfg, None)
    pre, fine = fit_two_stage(
        net, aug, cfg, seed=0, validate=lambda: {"ndcg@10": next(scores)}, reporter=keep
    )
    assert pre.best_epoch == 2 and fine.best_epoch == 1
    best_pre, last_pre, after_fine = keep.states[1], keep.states[2], keep.states[3]

    def one_epoch_from(state):
        torch.manual_seed(0)
        n = SASRecNet(split.n_items, cfg, None)
        n.load_state_dict(copy.deepcopy(state))
        train_sequences(n, real_only(aug), cfg.model_copy(update={"epochs": 1}), seed=1)
        return n.state_dict()

    expected = one_epoch_from(best_pre)
    assert all(torch.equal(after_fine[k], expected[k]) for k in expected)
    from_last = one_epoch_from(last_pre)
    assert not all(torch.equal(after_fine[k], from_last[k]) for k in expected)


def test_two_stage_keeps_pretrained_weights_when_fine_tuning_never_beats_them(split):
    aug = augmented_split(split, SyntheticSet(method="mle", prefixes={0: prefix_for(split, 0, 1)}))
    cfg = SASRecConfig(hidden=16, max_len=10, dropout=0.0, epochs=2, eval_every=1)
    scores = iter([0.2, 0.6, 0.5, 0.4])
    torch.manual_seed(0)
    net = SASRecNet(split.n_items, cfg, None)

    class Keep:
        states = []

        def report(self, metrics, checkpoint=None):
            self.states.append(checkpoint["net"])

    pre, fine = fit_two_stage(
        net, aug, cfg, seed=0, validate=lambda: {"ndcg@10": next(scores)}, reporter=Keep()
    )
    assert pre.best_epoch == 2 and fine.best_epoch == 0 and fine.epochs == 2
    final = net.state_dict()
    assert all(torch.equal(final[k], Keep.states[1][k]) for k in final)


def test_two_stage_model_records_both_stages_and_refits(split):
    aug = augmented_split(split, SyntheticSet(method="mle", prefixes={0: prefix_for(split, 0, 1)}))
    model = build_model(
        "sasrec", {"epochs": 2, "hidden": 16, "eval_every": 1, "finetune": True}, seed=0
    )
    from augrec.evaluation.evaluate import validation_ndcg

    info = model.fit(aug, validate=validation_ndcg(split))
    assert {"pretrain", "finetune", "best_epoch", "finetune_best_epoch"} <= set(info)
    assert {h["stage"] for h in model.fit_history} == {"pretrain", "finetune"}


def test_adversarial_term_is_the_loss_at_the_worst_nearby_table():
    net = tiny_net()
    clean = sequence_loss(net, INPUTS, TARGETS, CFG)
    assert float(adversarial_loss(net, INPUTS, TARGETS, CFG)) == pytest.approx(float(clean))
    cfg = CFG.model_copy(update={"adv_eps": 0.05, "adv_weight": 0.5})
    table = net.item_table()
    (grad,) = torch.autograd.grad(sequence_loss(net, INPUTS, TARGETS, cfg, table=table), table)
    norms = table.detach().norm(dim=1, keepdim=True)
    delta = 0.05 * norms * F.normalize(grad, dim=1)
    delta[0] = 0
    moved = grad[1:].norm(dim=1) > 0  # items the batch touches: each moved by 5% of its norm
    assert torch.allclose(delta[1:].norm(dim=1)[moved], 0.05 * norms[1:, 0][moved])
    worst = sequence_loss(net, INPUTS, TARGETS, cfg, table=table + delta)
    got = adversarial_loss(net, INPUTS, TARGETS, cfg)
    assert float(got) == pytest.approx(float(clean + 0.5 * worst), rel=1e-6)
    assert float(worst) > float(clean)  # the perturbation increases the loss
    # a random direction of the same size increases it less
    torch.manual_seed(1)
    rand = 0.05 * norms * F.normalize(torch.randn_like(table), dim=1)
    rand[0] = 0
    assert float(sequence_loss(net, INPUTS, TARGETS, cfg, table=table + rand)) < float(worst)


def test_adversarial_training_runs_and_learns(split):
    model = build_model("sasrec", {"epochs": 2, "hidden": 16, "adv_eps": 0.5}, seed=0)
    model.fit(split)
    losses = [h["loss"] for h in model.fit_history]
    assert all(np.isfinite(losses)) and losses[1] < losses[0]
