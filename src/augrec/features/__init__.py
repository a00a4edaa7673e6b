"""The Feast feature store around `feature_repo/`: ingest, training frames, online reads.

Importing this package is free (no Feast, no pandas): `feast apply` imports `spec` through
it. The public helpers load on first use:

- `training_frame(store, events, service)`: point-in-time features per event;
- `training_sequences(frame)`: per-user sequences for training;
- `open_store(repo, env)`: the `FeatureStore` of a repo in an environment;
- `FeatureClient`: online reads and live-event pushes for serving.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "training_frame": "augrec.features.training",
    "training_sequences": "augrec.features.training",
    "training_examples": "augrec.features.training",
    "open_store": "augrec.features.store",
    "FeatureClient": "augrec.features.online",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'augrec.features' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
