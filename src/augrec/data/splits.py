"""Train/validation/test splits over encoded item sequences (ARCHITECTURE section 4).

Items are encoded as 1..n_items (0 is padding) in order of first appearance; `item_ids[i]`
maps back to the user's original id, so every output can speak the user's ids again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from augrec.data.schema import Dataset
from augrec.errors import ConfigError

PROTOCOLS = ("loo", "temporal")


@dataclass(frozen=True)
class EvalSet:
    """Users to evaluate: each has a model-input history and one held-out target.

    Attributes:
        users: Index into `Split.user_ids`, shape [U].
        histories: Encoded item sequence per user (the model's input; masked when ranking).
        targets: Encoded held-out item per user, shape [U].
    """

    users: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.users)


@dataclass(frozen=True)
class Split:
    """Encoded training sequences plus validation and test sets."""

    protocol: str
    user_ids: np.ndarray  # [n_users] original ids
    item_ids: np.ndarray  # [n_items + 1] original ids; index 0 is padding (-1)
    train: list[np.ndarray]  # per user index, encoded training items in time order
    train_times: list[np.ndarray]  # per user index, Unix seconds aligned with `train`
    valid: EvalSet
    test: EvalSet
    # [n_items + 1, A] side-information ids per encoded item (attributes, category, brand),
    # 0 = none; None when the dataset has no item attributes.
    item_attributes: np.ndarray | None = None
    # [n_items + 1] title per encoded item ("" unknown; index 0 padding); None: no titles.
    item_titles: list[str] | None = None
    # Per training sequence, True where the item is synthetic (`augment.synthetic_set`);
    # None: every training item is real.
    train_synthetic: list[np.ndarray] | None = None

    @property
    def n_items(self) -> int:
        """Catalog size (encoded ids run 1..n_items)."""
        return len(self.item_ids) - 1

    @cached_property
    def item_counts(self) -> np.ndarray:
        """Training interactions per encoded item, shape [n_items + 1]."""
        flat = np.concatenate(self.train) if self.train else np.zeros(0, dtype=np.int64)
        return np.bincount(flat, minlength=self.n_items + 1)

    @property
    def n_train_interactions(self) -> int:
        """Interactions the models may learn from."""
        return int(sum(len(s) for s in self.train))


def _encode(ds: Dataset) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    df = ds.interactions
    item_codes, item_uniques = pd.factorize(df["item_id"], sort=False)
    user_codes, user_uniques = pd.factorize(df["user_id"], sort=False)
    enc = pd.DataFrame(
        {
            "u": user_codes.astype(np.int64),
            "i": item_codes.astype(np.int64) + 1,
            "t": df["timestamp"].to_numpy(np.int64),
        }
    )
    item_ids = np.concatenate([[-1], np.asarray(item_uniques, dtype=np.int64)])
    return np.asarray(user_uniques, dtype=np.int64), item_ids, enc


def item_side_info(ds: Dataset, item_ids: np.ndarray) -> np.ndarray | None:
    """Encode each item's attributes as ids 1..n_attributes, padded with 0 to one width.

    Amazon's `*_item2attributes.json` gives attribute lists; otherwise the items table's
    category and brand columns (when present) become two attribute slots.
    """
    per_item: list[list[str]] = [[] for _ in item_ids]
    if ds.item_attributes:
        for row, item in enumerate(item_ids):
            per_item[row] = [f"a{a}" for a in ds.item_attributes.get(int(item), [])]
    elif len(ds.items) and ({"category", "brand"} & set(ds.items.columns)):
        table = ds.items.set_index("item_id")
        cols = [c for c in ("category", "brand") if c in table.columns]
        known = table.reindex(item_ids[1:])
        for row, values in enumerate(known[cols].itertuples(index=False), start=1):
            per_item[row] = [f"{c}={v}" for c, v in zip(cols, values, strict=True) if pd.notna(v)]
    width = max((len(a) for a in per_item), default=0)
    if width == 0:
        return None
    vocab: dict[str, int] = {}
    out = np.zeros((len(item_ids), width), dtype=np.int64)
    for row, attrs in enumerate(per_item):
        for j, a in enumerate(attrs):
            out[row, j] = vocab.setdefault(a, len(vocab) + 1)
    return out


def item_titles(ds: Dataset, item_ids: np.ndarray) -> list[str] | None:
    """Each encoded item's title from the items table; None when no item has one."""
    if "title" not in ds.items.columns or not len(ds.items):
        return None
    table = ds.items.drop_duplicates("item_id").set_index("item_id")["title"]
    titles = table.reindex(item_ids[1:]).fillna("").astype(str).tolist()
    if not any(t.strip() for t in titles):
        return None
    return ["", *titles]


def _group(enc: pd.DataFrame, n_users: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-user item and time arrays, in the (already time-sorted) row order."""
    order = np.argsort(enc["u"].to_numpy(), kind="stable")
    u = enc["u"].to_numpy()[order]
    bounds = np.searchsorted(u, np.arange(n_users + 1))
    items = enc["i"].to_numpy()[order]
    times = enc["t"].to_numpy()[order]
    seqs = [items[bounds[k] : bounds[k + 1]] for k in range(n_users)]
    ts = [times[bounds[k] : bounds[k + 1]] for k in range(n_users)]
    return seqs, ts


def leave_one_out(ds: Dataset) -> Split:
    """Last item = test, second to last = validation, the rest = training.

    Users with fewer than 3 interactions only contribute training data.
    """
    user_ids, item_ids, enc = _encode(ds)
    seqs, times = _group(enc, len(user_ids))
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    evaluable = np.flatnonzero(lengths >= 3)
    train = [s[:-2] if len(s) >= 3 else s for s in seqs]
    train_t = [t[:-2] if len(t) >= 3 else t for t in times]
    valid = EvalSet(
        users=evaluable,
        histories=[seqs[u][:-2] for u in evaluable],
        targets=np.array([seqs[u][-2] for u in evaluable], dtype=np.int64),
    )
    test = EvalSet(
        users=evaluable,
        histories=[seqs[u][:-1] for u in evaluable],
        targets=np.array([seqs[u][-1] for u in evaluable], dtype=np.int64),
    )
    return Split(
        "loo",
        user_ids,
        item_ids,
        train,
        train_t,
        valid,
        test,
        item_side_info(ds, item_ids),
        item_titles(ds, item_ids),
    )


def temporal(ds: Dataset, test_cutoff: int | None = None, valid_cutoff: int | None = None) -> Split:
    """Global time split: train before `valid_cutoff`, validate and test on the next event.

    Defaults put the cut-offs at the 90th and 95th percentile of event times. A user's
    validation target is their first event in [valid_cutoff, test_cutoff) and their test
    target the first event at or after `test_cutoff`; both need earlier history.
    """
    if not ds.has_time:
        raise ConfigError(
            f"split.kind: 'temporal' needs timestamps, and dataset '{ds.name}' has none"
        )
    user_ids, item_ids, enc = _encode(ds)
    t = enc["t"].to_numpy()
    test_cutoff = int(np.quantile(t, 0.95)) if test_cutoff is None else int(test_cutoff)
    valid_cutoff = int(np.quantile(t, 0.90)) if valid_cutoff is None else int(valid_cutoff)
    if not valid_cutoff <= test_cutoff:
        raise ConfigError(
            f"split.valid_cutoff: {valid_cutoff} must not be after split.test_cutoff: {test_cutoff}"
        )
    seqs, times = _group(enc, len(user_ids))
    train, train_t = [], []
    v_users, v_hist, v_tgt, t_users, t_hist, t_tgt = [], [], [], [], [], []
    for u, (s, ts) in enumerate(zip(seqs, times, strict=True)):
        n_train = int(np.searchsorted(ts, valid_cutoff, side="left"))
        n_before_test = int(np.searchsorted(ts, test_cutoff, side="left"))
        train.append(s[:n_train])
        train_t.append(ts[:n_train])
        if n_train > 0 and n_before_test > n_train:
            v_users.append(u)
            v_hist.append(s[:n_train])
            v_tgt.append(s[n_train])
        if n_before_test > 0 and len(s) > n_before_test:
            t_users.append(u)
            t_hist.append(s[:n_before_test])
            t_tgt.append(s[n_before_test])
    valid = EvalSet(np.array(v_users, dtype=np.int64), v_hist, np.array(v_tgt, dtype=np.int64))
    test = EvalSet(np.array(t_users, dtype=np.int64), t_hist, np.array(t_tgt, dtype=np.int64))
    return Split(
        "temporal",
        user_ids,
        item_ids,
        train,
        train_t,
        valid,
        test,
        item_side_info(ds, item_ids),
        item_titles(ds, item_ids),
    )


def make_split(
    ds: Dataset,
    kind: str = "loo",
    test_cutoff: int | None = None,
    valid_cutoff: int | None = None,
) -> Split:
    """Dispatch on the split name from the config; cut-offs only apply to `temporal`."""
    if kind == "loo":
        return leave_one_out(ds)
    if kind == "temporal":
        return temporal(ds, test_cutoff=test_cutoff, valid_cutoff=valid_cutoff)
    raise ConfigError(f"split.kind: unknown value {kind!r}; expected one of {list(PROTOCOLS)}")


def member_mask(n_users: int, holdout_share: float, seed: int) -> np.ndarray:
    """True for users whose training data may train the generator (a seeded share is held out).

    The held-out users give the privacy report real users the generator never saw; the
    driver and every Ray worker draw the same mask from the same seed.
    """
    rng = np.random.default_rng([seed, 7])
    return rng.random(n_users) >= holdout_share
