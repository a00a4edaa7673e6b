"""Recommenders behind one interface (`fit`, `score`, `topk`), looked up by name."""

from __future__ import annotations

from typing import Any

from augrec.errors import ConfigError
from augrec.models.base import Recommender

# name -> "module:Class"; imported on demand so `augrec --help` stays fast.
_MODELS = {
    "popularity": "augrec.models.popularity:Popularity",
    "itemknn": "augrec.models.itemknn:ItemKNN",
    "sasrec": "augrec.models.sasrec:SASRec",
}


def available_models() -> list[str]:
    """Names accepted by `--model`."""
    return sorted(_MODELS)


def model_class(name: str) -> type[Recommender]:
    """Resolve a model name to its class."""
    import importlib

    if name not in _MODELS:
        raise ConfigError(f"--model: unknown value {name!r}; expected one of {available_models()}")
    module, cls = _MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, params: dict[str, Any] | None = None, seed: int = 0) -> Recommender:
    """Instantiate a model from its name and a dict of config values (validated by pydantic)."""
    cls = model_class(name)
    try:
        config = cls.Config(**(params or {}))
    except Exception as exc:  # pydantic's ValidationError names the field and value
        raise ConfigError(f"model config for {name!r}: {exc}") from exc
    return cls(config, seed=seed)
