import numpy as np
import pytest
import torch

from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out
from augrec.evaluation.evaluate import rank_users, validation_ndcg
from augrec.evaluation.metrics import ndcg
from augrec.models import build_model
from augrec.models.sasrec import SASRecConfig, SASRecNet, pad_left, sequence_loss
from augrec.training.loop import train_sequences


@pytest.fixture(scope="module")
def split(synthetic_dir):
    return leave_one_out(load_dataset(synthetic_dir))


def tiny_net(n_items=20, attrs=None, **kw):
    torch.manual_seed(0)
    return SASRecNet(n_items, SASRecConfig(hidden=16, max_len=6, dropout=0.0, **kw), attrs)


def test_shapes_padding_and_causality():
    attrs = np.zeros((21, 2), dtype=np.int64)
    attrs[1:, 0] = np.arange(20) % 3 + 1
    net = tiny_net(attrs=attrs).eval()
    seq = pad_left([np.array([3, 4, 5]), np.array([7])], max_len=6)
    assert seq.tolist() == [[3, 4, 5], [0, 0, 7]]  # left padding to the batch's longest
    h = net(seq)
    assert h.shape == (2, 3, 16) and torch.isfinite(h).all()
    # the hidden state at a position ignores later items
    changed = seq.clone()
    changed[0, 2] = 9
    h2 = net(changed)
    assert torch.allclose(h[0, :2], h2[0, :2], atol=1e-6)
    assert not torch.allclose(h[0, 2], h2[0, 2])
    # and a padded row's real position ignores the padding
    alone = net(torch.tensor([[7]]))
    assert torch.allclose(h[1, -1], alone[0, -1], atol=1e-5)


@pytest.mark.parametrize("loss", ["ce", "sampled"])
def test_losses_are_finite_and_learn(loss):
    net = tiny_net(loss=loss, negatives=8)
    cfg = SASRecConfig(hidden=16, max_len=6, dropout=0.0, loss=loss, negatives=8)
    inputs = torch.tensor([[0, 1, 2, 3], [0, 0, 4, 5]])
    targets = torch.tensor([[0, 2, 3, 4], [0, 0, 5, 6]])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss_value = sequence_loss(net, inputs, targets, cfg)
        assert torch.isfinite(loss_value)
        first = float(loss_value.detach()) if first is None else first
        opt.zero_grad()
        loss_value.backward()
        opt.step()
    assert float(loss_value.detach()) < 0.5 * first
    if loss == "ce":
        assert first == pytest.approx(np.log(20), rel=0.1)  # uniform over 20 items at init


def test_fit_beats_popularity_and_round_trips(split):
    cfg = {"epochs": 6, "eval_every": 2, "hidden": 32, "dropout": 0.2}
    model = build_model("sasrec", cfg, seed=0)
    info = model.fit(split, validate=validation_ndcg(split))
    assert info["best_epoch"] >= 2
    pop = build_model("popularity")
    pop.fit(split)
    ours = ndcg(rank_users(model, split.valid).ranks, 10)
    base = ndcg(rank_users(pop, split.valid).ranks, 10)
    assert ours > 1.5 * base
    again = build_model("sasrec", cfg)
    again.load_state_dict(model.state_dict())
    h = split.test.histories[:8]
    assert torch.allclose(model.score(h), again.score(h))  # the loaded one caches its table
    items = np.array([1, 2, 3])
    assert torch.allclose(model.item_similarity(items), again.item_similarity(items))


class Keep:
    def __init__(self):
        self.checkpoints = []

    def report(self, metrics, checkpoint=None):
        self.checkpoints.append(checkpoint)


def test_resume_from_checkpoint_equals_an_unbroken_run(split):
    cfg = SASRecConfig(epochs=4, hidden=16, max_len=20, dropout=0.3, batch_size=256)

    def net():
        torch.manual_seed(1)
        return SASRecNet(split.n_items, cfg, None)

    unbroken, keep = net(), Keep()
    train_sequences(unbroken, split.train, cfg, seed=3, reporter=keep)
    # "crash" after epoch 2, then resume from that checkpoint in a fresh process state
    resumed = net()
    torch.manual_seed(123)
    result = train_sequences(resumed, split.train, cfg, seed=3, resume=keep.checkpoints[1])
    assert result.epochs == 4 and result.history[2]["resumed_from"] == 2
    for a, b in zip(unbroken.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_early_stopping_keeps_the_best_epoch(split):
    scores = iter([0.1, 0.3, 0.2, 0.2, 0.2, 0.9])
    cfg = SASRecConfig(epochs=6, eval_every=1, patience=2, hidden=16, max_len=10)
    net = SASRecNet(split.n_items, cfg, None)
    result = train_sequences(net, split.train, cfg, validate=lambda: {"ndcg@10": next(scores)})
    assert result.epochs == 4 and result.best_epoch == 2 and result.best_score == 0.3
    assert "no better" in result.stopped


def test_refit_retrains_for_the_selected_epochs_with_validation_items(synthetic_dir):
    from augrec.config import TrainConfig
    from augrec.training.run import train_and_evaluate

    params = {"epochs": 4, "eval_every": 1, "hidden": 16, "dropout": 0.2}
    run = train_and_evaluate(synthetic_dir, "sasrec", TrainConfig(model=params, refit=True))
    refit = run.metrics()["refit"]
    best = run.candidates[0]["best_epoch"]
    assert refit["epochs"] == best and run.model.config.epochs == best
    assert set(refit["test_before_refit"]) >= {"ndcg@10", "hr@10"}
    # the refit model saw each user's validation item; the test item is still unseen
    assert run.metrics()["test"]["ndcg@10"] > 0.1
