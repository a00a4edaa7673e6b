"""The noisy-history test: the test set with a share of each user's history replaced.

Robustness to noisy and abnormal behaviour (mis-clicks, shared accounts, injected items) is
measured by ranking the same test targets after a seeded share of every test user's
history items is replaced by random items. The targets stay the same; the model sees (and
masks) the noisy history, as it would when serving one.

Rounding rule: a history of n items gets floor(share * n + 0.5) replacements (half rounds
up), at distinct positions drawn uniformly without replacement. Each replacement is drawn
uniformly from every item except the one it replaces and the user's target, so a
replacement always changes the history and never hides the target.
"""

from __future__ import annotations

import numpy as np

from augrec.data.splits import EvalSet


def replaced_count(n: int, share: float) -> int:
    """How many of n history items the test replaces (floor(share * n + 0.5))."""
    return min(n, int(np.floor(share * n + 0.5)))


def noisy_histories(eval_set: EvalSet, n_items: int, share: float, seed: int) -> EvalSet:
    """`eval_set` with `share` of each history's items replaced by random items (seeded).

    Raises:
        ValueError: `share` outside [0, 1], or a catalog too small to draw a different item.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"noisy share: {share!r} must be within [0, 1]")
    if n_items < 3:
        raise ValueError(f"noisy test: needs at least 3 items, the catalog has {n_items}")
    # One stream per (seed, share): the 10% and 20% tests draw independently.
    rng = np.random.default_rng([seed, int(round(share * 1_000_000))])
    histories = []
    for h, target in zip(eval_set.histories, eval_set.targets, strict=True):
        h = np.array(h, dtype=np.int64, copy=True)
        k = replaced_count(len(h), share)
        if k:
            positions = rng.choice(len(h), size=k, replace=False)
            for pos in positions:
                # Uniform over 1..n_items without the original and the target: draw among
                # n_items - |excluded| values and step over the excluded ones in order.
                excluded = sorted({int(h[pos]), int(target)})
                r = int(rng.integers(1, n_items + 1 - len(excluded)))
                for e in excluded:
                    if r >= e:
                        r += 1
                h[pos] = r
        histories.append(h)
    return EvalSet(users=eval_set.users, histories=histories, targets=eval_set.targets)
