"""A synthetic set: what a generator wrote, how it joins the real training data, and its files.

Two kinds of synthetic history:
- `prefixes[u]`: items written *before* real user u's first training item (extending a short
  history); u's validation and test items stay real and untouched.
- `extra`: standalone training sequences (virtual users; heuristic copies). They get no
  user id, so they can never be evaluated: synthetic users never enter validation or test.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augrec.data.splits import Split
from augrec.errors import ConfigError

SET_FILE = "synthetic.parquet"
META_FILE = "synthetic.json"


@dataclass
class SyntheticSet:
    """Encoded synthetic histories plus where they came from."""

    method: str
    prefixes: dict[int, np.ndarray] = field(default_factory=dict)
    extra: list[np.ndarray] = field(default_factory=list)
    extra_kind: str = "virtual"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_interactions(self) -> int:
        """Synthetic interactions in all."""
        return int(sum(len(p) for p in self.prefixes.values()) + sum(len(s) for s in self.extra))

    def sequences(self) -> list[np.ndarray]:
        """Every synthetic sequence (prefixes and extras), for the report."""
        return [p for p in self.prefixes.values() if len(p)] + [s for s in self.extra if len(s)]

    def share(self, split: Split) -> float:
        """Synthetic interactions as a share of all training interactions after merging."""
        n = self.n_interactions
        return n / max(n + split.n_train_interactions, 1)

    def cap(self, split: Split, max_share: float, rng: np.random.Generator) -> None:
        """Drop random synthetic sequences until the synthetic share is at most `max_share`."""
        limit = int(max_share / max(1e-9, 1 - max_share) * split.n_train_interactions)
        units = [("p", u, len(p)) for u, p in self.prefixes.items()] + [
            ("e", i, len(s)) for i, s in enumerate(self.extra)
        ]
        order = rng.permutation(len(units))
        kept_p: dict[int, np.ndarray] = {}
        kept_e: list[np.ndarray] = []
        total = 0
        for j in order:
            kind, key, n = units[j]
            if total + n > limit:
                continue
            total += n
            if kind == "p":
                kept_p[key] = self.prefixes[key]
            else:
                kept_e.append(self.extra[key])
        self.prefixes, self.extra = kept_p, kept_e

    def check_no_heldout(self, split: Split) -> None:
        """Raise if any synthetic item is a validation/test item of the user it was written for."""
        heldout: dict[int, set[int]] = {}
        for es in (split.valid, split.test):
            for u, t in zip(es.users, es.targets, strict=True):
                heldout.setdefault(int(u), set()).add(int(t))
        for u, p in self.prefixes.items():
            leak = heldout.get(int(u), set()) & set(p.tolist())
            if leak:
                raise AssertionError(f"synthetic prefix of user index {u} holds held-out {leak}")

    def merged_train(self, split: Split) -> list[np.ndarray]:
        """Real training sequences with prefixes prepended, then the extra sequences."""
        train = [
            np.concatenate([self.prefixes[u], s]) if u in self.prefixes else s
            for u, s in enumerate(split.train)
        ]
        return train + list(self.extra)


def augmented_split(split: Split, synth: SyntheticSet) -> Split:
    """The split models fit on: real + synthetic training data; validation and test unchanged.

    Extra sequences get user index >= n_users and no user id; evaluation keeps using the
    original split, so buckets and popularity stay defined by real data.
    """
    synth.check_no_heldout(split)
    train = synth.merged_train(split)
    times = list(split.train_times) + [np.zeros(len(s), dtype=np.int64) for s in synth.extra]
    # Which positions are synthetic: prefixes come first, extra sequences are all synthetic.
    flags = [
        np.arange(len(s)) < len(synth.prefixes.get(u, ()))
        for u, s in enumerate(train[: len(split.train)])
    ] + [np.ones(len(s), dtype=bool) for s in synth.extra]
    return dataclasses.replace(split, train=train, train_times=times, train_synthetic=flags)


def save(synth: SyntheticSet, split: Split, out: Path) -> None:
    """Write `synthetic.parquet` (original ids) and `synthetic.json` into `out`."""
    rows = []
    for u, p in synth.prefixes.items():
        for pos, item in enumerate(p):
            rows.append((f"u{split.user_ids[u]}", int(split.user_ids[u]), "prefix", pos, item))
    for i, s in enumerate(synth.extra):
        for pos, item in enumerate(s):
            rows.append((f"v{i}", None, synth.extra_kind, pos, item))
    df = pd.DataFrame(rows, columns=["seq_id", "user_id", "kind", "position", "item"])
    df["item_id"] = split.item_ids[df["item"].to_numpy(np.int64)] if len(df) else []
    df = df.drop(columns="item").astype({"user_id": "Int64"})
    df.to_parquet(out / SET_FILE, index=False)
    meta = {
        **synth.meta,
        "method": synth.method,
        "synthetic_interactions": synth.n_interactions,
        "users_extended": len(synth.prefixes),
        "extra_sequences": len(synth.extra),
        "extra_kind": synth.extra_kind,
        "synthetic_share": synth.share(split),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def load(path: Path, split: Split) -> SyntheticSet:
    """Read a synthetic set back and encode it against `split`'s ids."""
    path = Path(path)
    if not (path / SET_FILE).exists():
        raise ConfigError(
            f"--augment: {path} holds no {SET_FILE} (write one with `augrec augment`)"
        )
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("protocol") and meta["protocol"] != split.protocol:
        raise ConfigError(
            f"--augment: set was made for split {meta['protocol']!r}, this run uses "
            f"{split.protocol!r}"
        )
    df = pd.read_parquet(path / SET_FILE)
    item_index = pd.Series(np.arange(len(split.item_ids)), index=split.item_ids)
    user_index = pd.Series(np.arange(len(split.user_ids)), index=split.user_ids)
    unknown = ~df["item_id"].isin(item_index.index[1:])
    if unknown.any():
        raise ConfigError(
            f"--augment: {int(unknown.sum())} synthetic rows name items not in this data, e.g. "
            f"item_id={df.loc[unknown, 'item_id'].iloc[0]!r}; was the set made from another file?"
        )
    df = df.sort_values(["seq_id", "position"], kind="stable")
    synth = SyntheticSet(
        method=meta["method"], extra_kind=meta.get("extra_kind", "virtual"), meta=meta
    )
    for seq_id, g in df.groupby("seq_id", sort=False):
        items = item_index[g["item_id"].to_numpy()].to_numpy(np.int64)
        if seq_id.startswith("u"):
            uid = int(g["user_id"].iloc[0])
            if uid not in user_index.index:
                raise ConfigError(f"--augment: user_id={uid} is not in this data")
            synth.prefixes[int(user_index[uid])] = items
        else:
            synth.extra.append(items)
    return synth
