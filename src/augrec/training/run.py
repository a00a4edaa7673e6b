"""`augrec train`: fit on train, select on validation, evaluate once on test, write a run dir.

A run directory holds `metrics.json`, `recommendations.parquet`, `model.pt`, `config.json`
and `manifest.json` (lineage: data fingerprint, split, configs, seed, code and library
versions, timings). `load_run_model` rebuilds the model from it (or from a registered
version, which holds the same files).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from augrec.config import TrainConfig
from augrec.data.loaders import load_dataset
from augrec.data.splits import Split, make_split
from augrec.errors import ConfigError
from augrec.evaluation.evaluate import (
    EvalResult,
    buckets,
    rank_users,
    summarize,
    validation_ndcg,
)
from augrec.evaluation.metrics import ndcg
from augrec.io import atomic_dir, write_json
from augrec.models import build_model, model_class
from augrec.models.base import Recommender, Reporter
from augrec.registry.manifest import MANIFEST_FILE, build_manifest, fingerprint_files, now_iso

if TYPE_CHECKING:
    from augrec.training.ray_train import RayConfig

log = logging.getLogger(__name__)
MODEL_FILE = "model.pt"
SELECT_METRIC = "ndcg@10"  # what selection compares; never computed on test


def seed_everything(seed: int) -> None:
    """Seed every RNG a model may touch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
    refit: dict[str, Any] | None = None

    def metrics(self) -> dict[str, Any]:
        """The `metrics.json` document."""
        return {
            "dataset": self.dataset,
            "model": self.model_name,
            "protocol": f"{self.split.protocol}-full",
            "seed": self.model.seed,
            "params": self.params,
            "test": summarize(self.test, self.split),
            "valid": summarize(self.valid, self.split),
            "buckets": buckets(self.test, self.split, self.split.test),
            "selection": {"metric": f"valid {SELECT_METRIC}", "candidates": self.candidates},
            "augmentation": self.augmentation,
            "refit": self.refit,
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


def train_and_evaluate(
    data: str | Path,
    model_name: str,
    config: TrainConfig,
    seed: int = 0,
    reporter: Reporter | None = None,
    progress: Any = None,
    ray_cfg: RayConfig | None = None,
    augment: str | Path | None = None,
) -> RunResult:
    """Load, split, fit each candidate config, keep the best on validation, test it once."""
    cls = model_class(model_name)  # fail on a bad name before loading data
    started_at = now_iso()
    t0 = time.perf_counter()
    ds = load_dataset(data)
    data_source = {
        "path": str(Path(data).resolve()),
        "format": ds.source_format,
        **fingerprint_files(ds.files),
    }
    split = make_split(ds, config.split.kind, config.split.test_cutoff, config.split.valid_cutoff)
    fit_split, augmentation = split, None
    if augment is not None:
        from augrec.augment.synthetic_set import augmented_split, load

        synth = load(Path(augment), split)
        fit_split = augmented_split(split, synth)
        augmentation = {
            "path": str(augment),
            "method": synth.method,
            "synthetic_interactions": synth.n_interactions,
            "synthetic_share": round(synth.share(split), 6),
            "users_extended": len(synth.prefixes),
            "extra_sequences": len(synth.extra),
        }
        log.info("augmentation %s: %s", augment, augmentation)
    t_load = time.perf_counter() - t0
    log.info(
        "split %s: %d users, %d items, %d train interactions, %d valid / %d test users",
        split.protocol,
        len(split.user_ids),
        split.n_items,
        split.n_train_interactions,
        len(split.valid),
        len(split.test),
    )
    validate = validation_ndcg(split, config.eval.batch_size)
    grid = [config.model] if config.model else cls.grid()
    best: tuple[float, Recommender, dict[str, Any], EvalResult, dict[str, Any]] | None = None
    candidates = []
    t_fit = t_eval = 0.0
    for params in grid:
        seed_everything(seed)
        model = build_model(model_name, params, seed=seed)
        t1 = time.perf_counter()
        fit_reporter = reporter
        if fit_reporter is None and hasattr(model.config, "epochs"):
            from augrec.training.progress import ConsoleReporter

            fit_reporter = ConsoleReporter(model.config.epochs, prefix=f"{model_name} ")
        if ray_cfg is not None and ray_cfg.num_workers > 0:
            if not hasattr(model, "build"):
                raise ConfigError(
                    f"--num-workers: {ray_cfg.num_workers} needs a model trained by gradient "
                    f"descent; {model_name!r} fits in-process (use --num-workers 0)"
                )
            from augrec.training.ray_train import fit_with_ray

            info = fit_with_ray(
                model,
                data,
                config.split,
                ray_cfg,
                split.n_items,
                split.item_attributes,
                augment=augment,
            )
        else:
            info = model.fit(fit_split, validate=validate, reporter=fit_reporter)
        t2 = time.perf_counter()
        valid = rank_users(model, split.valid, config.eval.batch_size)
        t_fit, t_eval = t_fit + t2 - t1, t_eval + time.perf_counter() - t2
        score = ndcg(valid.ranks, 10)
        candidates.append(
            {
                "params": params,
                f"valid_{SELECT_METRIC}": score,
                "fit_seconds": round(t2 - t1, 3),
                **info,
            }
        )
        log.info("candidate %s %s: valid %s=%.4f", model_name, params, SELECT_METRIC, score)
        if best is None or score > best[0]:
            best = (score, model, params, valid, info)
    assert best is not None
    _, model, params, valid, best_info = best
    refit_info = None
    if config.refit and best_info.get("best_epoch"):
        # The selected model's test score is kept beside the refit one, for comparison with
        # protocols that never train on validation items; the refit model is the headline.
        before = summarize(rank_users(model, split.test, config.eval.batch_size), split)
        t4 = time.perf_counter()
        model = _refit(model_name, params, seed, split, fit_split, best_info["best_epoch"])
        refit_info = {
            "epochs": best_info["best_epoch"],
            "seconds": round(time.perf_counter() - t4, 3),
            "test_before_refit": before,
        }
        t_fit += refit_info["seconds"]
        log.info("refit on train + validation items for %d epochs", refit_info["epochs"])
    advance = None
    if progress is not None:
        task = progress.add_task("evaluating on test", total=len(split.test))
        advance = lambda n: progress.advance(task, n)  # noqa: E731
    t3 = time.perf_counter()
    test = rank_users(model, split.test, config.eval.batch_size, advance)
    t_eval += time.perf_counter() - t3
    trainer: dict[str, Any] = {"kind": "in-process"}
    if ray_cfg is not None and ray_cfg.num_workers > 0:
        trainer = {
            "kind": "ray",
            "num_workers": ray_cfg.num_workers,
            "use_gpu": ray_cfg.use_gpu,
            "cpus_per_worker": ray_cfg.cpus_per_worker,
        }
    return RunResult(
        dataset=ds.name,
        model_name=model_name,
        split=split,
        model=model,
        params=params,
        candidates=candidates,
        valid=valid,
        test=test,
        # train = fitting every candidate; eval = ranking validation (selection) and test.
        seconds={"load": round(t_load, 3), "train": round(t_fit, 3), "eval": round(t_eval, 3)},
        augmentation=augmentation,
        refit=refit_info,
        data_source=data_source,
        started_at=started_at,
        trainer=trainer,
    )


def run_manifest(result: RunResult, config: TrainConfig) -> dict[str, Any]:
    """The `manifest.json` document of a run (see `augrec.registry.manifest`)."""
    split = result.split
    return build_manifest(
        dataset=result.dataset,
        data_source=result.data_source,
        protocol=split.protocol,
        split_config=config.split.model_dump(),
        split_sizes={
            "users": len(split.user_ids),
            "items": split.n_items,
            "train_interactions": split.n_train_interactions,
            "valid_users": len(split.valid),
            "test_users": len(split.test),
        },
        model=result.model_name,
        params=result.params,
        seed=result.model.seed,
        config=config.model_dump(),
        seconds=result.seconds,
        started_at=result.started_at,
        trainer=result.trainer,
        feature_contract=result.feature_contract,
        augmentation=result.augmentation,
    )


def _refit(
    model_name: str, params: dict[str, Any], seed: int, split: Split, fit_split: Split, epochs: int
) -> Recommender:
    """Retrain from scratch for `epochs` with every user's validation item appended.

    The epoch count was chosen on validation; the validation item is the user's most recent
    known interaction, and the test item stays unseen.
    """
    train = list(fit_split.train)
    for u, target in zip(split.valid.users, split.valid.targets, strict=True):
        train[u] = np.append(train[u], target)
    seed_everything(seed)
    model = build_model(model_name, {**params, "epochs": epochs}, seed=seed)
    model.fit(dataclasses.replace(fit_split, train=train))
    return model


def write_run(result: RunResult, out: str | Path, config: TrainConfig, overwrite: bool) -> Path:
    """Write metrics, recommendations, the model, its config and the manifest, atomically."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_json(tmp / "metrics.json", result.metrics())
        result.recommendations().to_parquet(tmp / "recommendations.parquet", index=False)
        torch.save(
            {
                "model": result.model_name,
                "params": result.params,
                "seed": result.model.seed,
                "state": result.model.state_dict(),
                "item_ids": torch.from_numpy(result.split.item_ids),
            },
            tmp / MODEL_FILE,
        )
        write_json(tmp / "config.json", config.model_dump())
        if result.feature_contract is not None:
            from augrec.features import contract

            contract.write(result.feature_contract, tmp / contract.CONTRACT_FILE)
        write_json(tmp / MANIFEST_FILE, run_manifest(result, config))
    return Path(out)


def load_run_model(
    run_dir: str | Path, device: str | None = None
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
    path = Path(run_dir) / MODEL_FILE
    if not path.exists():
        raise ConfigError(f"{run_dir}: no {MODEL_FILE} (not a run directory?)")
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
