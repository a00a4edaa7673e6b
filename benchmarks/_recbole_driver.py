"""RecBole side of `peer_recbole.py`: runs inside RecBole's own venv, never imported by augrec.

Trains RecBole's SASRec epoch by epoch under a wall-clock budget, validates after every
epoch with the protocol of augrec (full ranking, seen items masked, NDCG@10), keeps the best
validation weights in memory and finally evaluates them on test. Writes one JSON file.

The ranking and the metric are augrec's own hand-checked functions (`augrec.evaluation`,
pure numpy/torch, put on `sys.path` from this repository), so both systems are scored by the
same code. RecBole does not mask seen items for sequential models (only the padding id), so
the masking is done here; RecBole's own unmasked test NDCG@10 is reported beside it.

    <recbole-venv>/bin/python benchmarks/_recbole_driver.py --spec spec.json --out result.json
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from augrec.evaluation.metrics import hit_rate, ndcg  # noqa: E402
from augrec.evaluation.ranking import mask_scores, target_ranks  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_sequences(inter_file: Path) -> dict[str, list[str]]:
    """User token -> item tokens in file order (the .inter rows are already in time order)."""
    seqs: dict[str, list[str]] = {}
    with inter_file.open() as fh:
        reader = csv.reader(fh, delimiter="\t")
        next(reader)  # header
        for user, item, _ in reader:
            seqs.setdefault(user, []).append(item)
    return seqs


def internal_histories(dataset, seqs: dict[str, list[str]]) -> dict[int, np.ndarray]:
    """Internal user id -> full item sequence in internal ids (targets included)."""
    out = {}
    for user, items in seqs.items():
        uid = int(dataset.token2id(dataset.uid_field, user))
        out[uid] = np.asarray(dataset.token2id(dataset.iid_field, items), dtype=np.int64)
    return out


@torch.no_grad()
def evaluate(
    model, loader, full_seqs: dict[int, np.ndarray], drop_last: int, unmasked: bool = False
) -> dict:
    """NDCG@10/HR@10 with seen items masked (augrec protocol), and unmasked (RecBole's) on ask.

    `drop_last` is how many items at the end of the user's sequence are not history:
    2 for validation (valid and test targets), 1 for test. The unmasked ranking is left out
    of the timed per-epoch validation so that it costs what ours costs.
    """
    model.eval()
    ds = loader._dataset
    uid_field, iid_field = ds.uid_field, ds.iid_field
    masked, raw, pairs = [], [], []
    for batch in loader:
        interaction = batch[0]
        scores = model.full_sort_predict(interaction).float()  # [B, N], column 0 = padding
        targets = interaction[iid_field].numpy()
        uids = interaction[uid_field].numpy()
        if unmasked:
            raw.append(target_ranks(mask_scores(scores.clone(), None), targets))
        hist = [full_seqs[int(u)][:-drop_last] for u in uids]
        masked.append(target_ranks(mask_scores(scores, hist), targets))
        pairs.extend(
            zip(
                ds.id2token(uid_field, uids).tolist(),
                ds.id2token(iid_field, targets).tolist(),
                strict=True,
            )
        )
    m = np.concatenate(masked)
    out = {"ndcg@10": ndcg(m, 10), "hr@10": hit_rate(m, 10), "users": int(len(m)), "pairs": pairs}
    if unmasked:
        r = np.concatenate(raw)
        out.update({"unmasked_ndcg@10": ndcg(r, 10), "unmasked_hr@10": hit_rate(r, 10)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--spec", type=Path, required=True, help="JSON written by peer_recbole.py")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value options from the command line
    # Deprecation notices from RecBole's use of torch.cuda.amp and numpy, one per epoch.
    warnings.filterwarnings("ignore", category=FutureWarning)
    spec = json.loads(args.spec.read_text())
    budget = float(spec["budget_s"])
    max_epochs = int(spec["max_epochs"])

    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    t0 = time.perf_counter()
    config = Config(model="SASRec", dataset=spec["dataset"], config_dict=spec["config"])
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train_data._dataset).to(config["device"])
    trainer = Trainer(config, model)
    full_seqs = internal_histories(dataset, read_sequences(Path(spec["inter_file"])))
    prep_s = time.perf_counter() - t0
    log(
        f"recbole {recbole.__version__}: {dataset.user_num - 1} users, {dataset.item_num - 1} "
        f"items, {len(train_data._dataset)} training samples (one per prefix), "
        f"{len(valid_data._dataset)} valid / {len(test_data._dataset)} test users; "
        f"preprocessing {prep_s:.1f}s; torch threads {torch.get_num_threads()}"
    )

    history: list[dict] = []
    valid_pairs: list = []
    best_score, best_epoch, best_state = -1.0, 0, None
    t_start = time.perf_counter()
    for epoch in range(max_epochs):
        t_epoch = time.perf_counter()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        loss = float(sum(loss) if isinstance(loss, tuple) else loss) / max(len(train_data), 1)
        # Same rule as augrec's loop: the budget is checked after training; the epoch that
        # crosses it is still validated, then training stops.
        elapsed = time.perf_counter() - t_start
        train_s = time.perf_counter() - t_epoch
        valid = evaluate(model, valid_data, full_seqs, drop_last=2)
        score = valid["ndcg@10"]
        valid_pairs = valid_pairs or valid["pairs"]
        if score > best_score:
            best_score, best_epoch = score, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        wall = time.perf_counter() - t_start
        history.append(
            {
                "epoch": epoch + 1,
                "loss": loss,
                "epoch_seconds": train_s,
                "valid_seconds": wall - elapsed,
                "wall_seconds": wall,
                "valid_ndcg@10": score,
                "valid_hr@10": valid["hr@10"],
            }
        )
        log(
            f"recbole epoch {epoch + 1} loss {loss:.4f} valid ndcg@10 {score:.4f} "
            f"(best {best_score:.4f} @ {best_epoch}) "
            f"train {train_s:.1f}s valid {wall - elapsed:.1f}s wall {wall:.0f}/{budget:.0f}s"
        )
        if elapsed >= budget:
            break
    assert best_state is not None
    model.load_state_dict(best_state)
    t_test = time.perf_counter()
    test = evaluate(model, test_data, full_seqs, drop_last=1, unmasked=True)
    # RecBole's own evaluator on the same weights: unmasked, rounded to 4 decimals.
    trainer.eval_collector.data_collect(train_data)
    native = trainer.evaluate(test_data, load_best_model=False)
    test_s = time.perf_counter() - t_test
    log(
        f"recbole test (best valid epoch {best_epoch}): ndcg@10 {test['ndcg@10']:.4f} masked, "
        f"{test['unmasked_ndcg@10']:.4f} unmasked (RecBole's evaluator: {native['ndcg@10']})"
    )
    result = {
        "recbole": recbole.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "preprocess_seconds": prep_s,
        "test_seconds": test_s,
        "train_samples": len(train_data._dataset),
        "users": dataset.user_num - 1,
        "items": dataset.item_num - 1,
        "history": history,
        "best_epoch": best_epoch,
        "best_valid_ndcg@10": best_score,
        "test": {k: v for k, v in test.items() if k != "pairs"},
        "native_test": {k: float(v) for k, v in native.items()},
        "params": int(sum(p.numel() for p in model.parameters())),
        "valid_pairs": valid_pairs,
        "test_pairs": test["pairs"],
        "finite": all(math.isfinite(h["loss"]) for h in history),
    }
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
