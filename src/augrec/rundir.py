"""The run directory: the one owner of its layout, its writing, its reading and its model.

A run directory (local path today; the registry copies one into every version, and a kfp
`Output[Model]` is one) holds:

    metrics.json              test/valid metrics, buckets, selection, timings
    recommendations.parquet   top-20 per test user, original ids, seen items excluded
    model.pt                  the learned state (weights-only torch payload)
    config.json               the resolved run config
    manifest.json             lineage (see `augrec.registry.manifest`)
    [features.json]           the Feast contract, when features came from Feast
    [gate.json]               the validation gate's verdict on this model file
    [report.html]             the pipeline's report on the run
    [search_index.zip]        the product-search index over the model's catalog
                              (`augrec.search.index`), refused when the catalog differs
    [augmentation/]           the synthetic set generated in-process (config `augment:`):
                              synthetic.parquet/json, synthetic_report.json/html,
                              generator.pt, training.json (`augment.outputs`); it stays
                              with the run and is not copied into the registry

Every other package asks this module for these names and files; `training.run` produces a
`RunResult` and writes nothing itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from augrec.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from augrec.config import TrainConfig
    from augrec.data.splits import Split
    from augrec.evaluation.evaluate import EvalResult
    from augrec.models.base import Recommender

METRICS = "metrics.json"
RECOMMENDATIONS = "recommendations.parquet"
MODEL = "model.pt"
CONFIG = "config.json"
MANIFEST = "manifest.json"
FEATURES = "features.json"
GATE = "gate.json"
REPORT = "report.html"
SEARCH_INDEX = "search_index.zip"
AUGMENTATION = "augmentation"  # a folder: what `augment.outputs.write_augmentation` writes
SYNTHETIC_REPORT = f"{AUGMENTATION}/synthetic_report.html"
# What makes a directory a run (and a registered version), and what travels with it.
REQUIRED = (MANIFEST, METRICS, MODEL, CONFIG)
OPTIONAL = (GATE, FEATURES, SEARCH_INDEX)
SELECT_METRIC = "ndcg@10"  # what selection compares; never computed on test


@dataclass
class RunResult:
    """What a training run produced, before anything is written."""

    dataset: str
    model_name: str
    split: Split
    model: Recommender
    params: dict[str, Any]
    candidates: list[dict[str, Any]]
    valid: EvalResult
    test: EvalResult
    seconds: dict[str, float] = field(default_factory=dict)
    # Lineage for manifest.json: the input's path, format and content fingerprint, when the
    # run started, how it trained, and (when used) the Feast contract and augmentation.
    data_source: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    trainer: dict[str, Any] = field(default_factory=lambda: {"kind": "in-process"})
    feature_contract: dict[str, Any] | None = None
    augmentation: dict[str, Any] | None = None
    # (SyntheticSet, augment info, report) of a set generated in-process, written under
    # AUGMENTATION; None when the run used real data or a set made elsewhere.
    synthetic: tuple[Any, dict[str, Any], dict[str, Any]] | None = None
    # share -> ranking of the test targets after that share of each history was replaced
    test_noisy: dict[str, EvalResult] = field(default_factory=dict)
    refit: dict[str, Any] | None = None
    history: list[dict[str, Any]] | None = None  # per-epoch curve of the selected fit

    def metrics(self) -> dict[str, Any]:
        """The `metrics.json` document."""
        from augrec.evaluation.evaluate import buckets, summarize

        return {
            "dataset": self.dataset,
            "model": self.model_name,
            "protocol": f"{self.split.protocol}-full",
            "seed": self.model.seed,
            "params": self.params,
            "test": summarize(self.test, self.split),
            "test_noisy": {
                share: summarize(result, self.split) for share, result in self.test_noisy.items()
            },
            "valid": summarize(self.valid, self.split),
            "buckets": buckets(self.test, self.split, self.split.test),
            "selection": {"metric": f"valid {SELECT_METRIC}", "candidates": self.candidates},
            "augmentation": self.augmentation,
            "refit": self.refit,
            "history": self.history,
            "data": {
                "users": len(self.split.user_ids),
                "items": self.split.n_items,
                "train_interactions": self.split.n_train_interactions,
                "valid_users": len(self.split.valid),
                "test_users": len(self.split.test),
            },
            "seconds": self.seconds,
        }

    def recommendations(self) -> pd.DataFrame:
        """Top-20 per test user in original ids, seen items already excluded."""
        import pandas as pd

        users = self.split.user_ids[self.split.test.users]
        n, k = self.test.topk_items.shape
        df = pd.DataFrame(
            {
                "user_id": np.repeat(users, k),
                "rank": np.tile(np.arange(1, k + 1), n),
                "item_id": self.split.item_ids[self.test.topk_items.ravel()],
                "score": self.test.topk_scores.ravel(),
            }
        )
        # Fewer than k unseen items leaves masked slots; they are not recommendations.
        return df[np.isfinite(df["score"])].reset_index(drop=True)

    def manifest(self, config: TrainConfig, run_dir: Path) -> dict[str, Any]:
        """The `manifest.json` document (see `augrec.registry.manifest`)."""
        from augrec.registry.manifest import build_manifest

        split = self.split
        return build_manifest(
            dataset=self.dataset,
            data_source=self.data_source,
            protocol=split.protocol,
            split_config=config.split.model_dump(),
            split_sizes={
                "users": len(split.user_ids),
                "items": split.n_items,
                "train_interactions": split.n_train_interactions,
                "valid_users": len(split.valid),
                "test_users": len(split.test),
            },
            model=self.model_name,
            params=self.params,
            seed=self.model.seed,
            config=config.model_dump(),
            seconds=self.seconds,
            started_at=self.started_at,
            trainer=self.trainer,
            feature_contract=self.feature_contract,
            augmentation=self.augmentation,
            run_dir=run_dir,
        )


def write_run(
    result: RunResult, out: str | os.PathLike[str], config: TrainConfig, overwrite: bool
) -> Path:
    """Write metrics, recommendations, the model, its config and the manifest, atomically."""
    import torch

    from augrec.features import contract
    from augrec.io import atomic_dir, write_json

    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / METRICS, result.metrics())
        result.recommendations().to_parquet(tmp / RECOMMENDATIONS, index=False)
        torch.save(
            {
                "model": result.model_name,
                "params": result.params,
                "seed": result.model.seed,
                "state": result.model.state_dict(),
                "item_ids": torch.from_numpy(result.split.item_ids),
            },
            tmp / MODEL,
        )
        write_json(tmp / CONFIG, config.model_dump())
        if result.synthetic is not None:
            from augrec.augment.outputs import write_augmentation

            synth, info, report = result.synthetic
            write_augmentation(tmp / AUGMENTATION, result.split, synth, info, report, True)
        if result.feature_contract is not None:
            contract.write(result.feature_contract, tmp / FEATURES)
        write_json(tmp / MANIFEST, result.manifest(config, out.resolve()))
    return out


def is_run(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a directory holding a model file."""
    return (Path(path) / MODEL).is_file()


def missing_files(path: str | os.PathLike[str]) -> list[str]:
    """The required run files `path` lacks (empty: a complete run directory)."""
    return [f for f in REQUIRED if not (Path(path) / f).exists()]


def present_files(path: str | os.PathLike[str]) -> list[str]:
    """The required and optional run files present in `path`, in layout order."""
    return [f for f in (*REQUIRED, *OPTIONAL) if (Path(path) / f).exists()]


def read_json(path: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """One of the run's JSON documents (`METRICS`, `MANIFEST`, `GATE`, ...), None if absent."""
    f = Path(path) / name
    return json.loads(f.read_text()) if f.exists() else None


def read_metrics(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's `metrics.json`; a clear error when it is missing."""
    doc = read_json(path, METRICS)
    if doc is None:
        raise ConfigError(f"{path}: no {METRICS} (not a run directory?)")
    return doc


def write_gate(verdict: dict[str, Any], run_dir: str | os.PathLike[str]) -> Path:
    """Write the gate's verdict into the run directory (atomically)."""
    from augrec.io import write_json

    path = Path(run_dir) / GATE
    write_json(path, verdict)
    return path


def load_model(
    run_dir: str | os.PathLike[str], device: str | None = None
) -> tuple[Recommender, np.ndarray]:
    """Rebuild the trained model of a run directory (or registered version).

    Args:
        run_dir: Directory holding `model.pt` as `write_run` wrote it.
        device: Override the model's `device` setting (e.g. load a GPU-trained SASRec on
            a CPU box); ignored by models without one.

    Returns:
        The model, ready to `score`/`topk`, and `item_ids` [n_items + 1] mapping encoded ids
        back to the data's own item ids (index 0 is padding).
    """
    import torch

    from augrec.models import build_model, model_class

    path = Path(run_dir) / MODEL
    if not path.exists():
        raise ConfigError(f"{run_dir}: no {MODEL} (not a run directory?)")
    # weights_only: the payload is tensors, numbers, strings and dicts, so nothing in a
    # model file pulled from a registry or object store can run code on load.
    payload = torch.load(path, map_location="cpu", weights_only=True)
    params = dict(payload["params"])
    cls = model_class(payload["model"])
    if "device" in cls.Config.model_fields:
        if device is not None:
            params["device"] = device
        elif str(params.get("device", "cpu")).startswith("cuda") and not torch.cuda.is_available():
            params["device"] = "cpu"
    model = build_model(payload["model"], params, seed=int(payload["seed"]))
    model.load_state_dict(payload["state"])
    return model, payload["item_ids"].numpy()
