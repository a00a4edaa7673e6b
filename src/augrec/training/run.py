"""`augrec train`: fit on train, select on validation, evaluate once on test.

Produces a `RunResult`; `augrec.rundir` writes it as a run directory and loads it back.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from augrec import storage
from augrec.config import TrainConfig
from augrec.data.loaders import load_dataset
from augrec.data.splits import Split, make_split
from augrec.errors import ConfigError
from augrec.evaluation.evaluate import (
    EvalResult,
    rank_users,
    summarize,
    validation_ndcg,
)
from augrec.evaluation.metrics import ndcg
from augrec.evaluation.noisy import noisy_histories
from augrec.models import build_model, model_class
from augrec.models.base import Recommender, Reporter
from augrec.registry.manifest import fingerprint_files, now_iso
from augrec.rundir import SELECT_METRIC, RunResult

if TYPE_CHECKING:
    from augrec.features.training import FeatureSource
    from augrec.training.ray_train import RayConfig

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed every RNG a model may touch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_and_evaluate(
    data: str | Path,
    model_name: str,
    config: TrainConfig,
    seed: int = 0,
    reporter: Reporter | None = None,
    progress: Any = None,
    ray_cfg: RayConfig | None = None,
    augment: str | Path | None = None,
    features: FeatureSource | None = None,
) -> RunResult:
    """Load, split, fit each candidate config, keep the best on validation, test it once.

    With `features`, the training sequences are read from that Feast store point in time
    (and must equal the log's), and the run records the store's feature contract.
    """
    cls = model_class(model_name)  # fail on a bad name before loading data
    started_at = now_iso()
    t0 = time.perf_counter()
    ds = load_dataset(data, titles=config.titles)
    data_source = {
        "path": str(data) if storage.is_remote(data) else str(Path(data).resolve()),
        "format": ds.source_format,
        **fingerprint_files(ds.files),
    }
    split = make_split(ds, config.split.kind, config.split.test_cutoff, config.split.valid_cutoff)
    feature_contract = None
    if features is not None:
        from augrec.features.training import read_split

        split, feature_contract = read_split(split, features)
        log.info("training sequences read from Feast %s (%s)", features.repo, features.service)
    fit_split, augmentation, synthetic = split, None, None
    if augment is not None and config.augment is not None:
        raise ConfigError(
            f"--augment: {augment} and the config's augment: section both give synthetic data; "
            "use one (the section generates it in-process)"
        )
    if config.augment is not None:
        fit_split, augmentation, synthetic = _augment_in_process(split, config.augment, seed)
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
    grid = expand_grid([config.model] if config.model else cls.grid(), config.selection.grid, cls)
    if ray_cfg is not None and ray_cfg.num_workers > 0:
        _refuse_recipes_on_ray(grid, config)
    short = np.array([len(split.train[u]) for u in split.valid.users]) <= config.selection.short_max
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
        score_all = ndcg(valid.ranks, 10)
        score_short = ndcg(valid.ranks[short], 10) if short.any() else 0.0
        score = score_short if config.selection.users == "short" else score_all
        candidates.append(
            {
                "params": params,
                f"valid_{SELECT_METRIC}": score_all,
                f"valid_{SELECT_METRIC}_history<={config.selection.short_max}": score_short,
                "fit_seconds": round(t2 - t1, 3),
                **info,
            }
        )
        log.info("candidate %s %s: valid %s=%.4f", model_name, params, SELECT_METRIC, score)
        if best is None or score > best[0]:
            best = (score, model, params, valid, info)
    assert best is not None
    _, model, params, valid, best_info = best
    history = getattr(model, "fit_history", None)  # the selected fit's curve, before any refit
    refit_info = None
    if config.refit and best_info.get("best_epoch"):
        # The selected model's test score is kept beside the refit one, for comparison with
        # protocols that never train on validation items; the refit model is the headline.
        before = summarize(rank_users(model, split.test, config.eval.batch_size), split)
        t4 = time.perf_counter()
        epochs = {"epochs": best_info["best_epoch"]}
        if "finetune_best_epoch" in best_info:  # the two-stage recipe repeats both stages
            epochs["finetune_epochs"] = best_info["finetune_best_epoch"]
        model = _refit(model_name, params, seed, split, fit_split, epochs)
        refit_info = {
            **epochs,
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
    test_noisy = {}
    for share in config.eval.noisy_shares:
        noisy_set = noisy_histories(split.test, split.n_items, share, seed)
        test_noisy[f"{share:g}"] = rank_users(model, noisy_set, config.eval.batch_size)
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
        synthetic=synthetic,
        test_noisy=test_noisy,
        refit=refit_info,
        history=history,
        data_source=data_source,
        feature_contract=feature_contract,
        started_at=started_at,
        trainer=trainer,
    )


def _refit(
    model_name: str,
    params: dict[str, Any],
    seed: int,
    split: Split,
    fit_split: Split,
    epochs: dict[str, int],
) -> Recommender:
    """Retrain from scratch for `epochs` with every user's validation item appended.

    The epoch counts (`epochs`, and `finetune_epochs` for the two-stage recipe) were chosen on
    validation; the validation item is the user's most recent known interaction (real), and
    the test item stays unseen.
    """
    train = list(fit_split.train)
    flags = list(fit_split.train_synthetic) if fit_split.train_synthetic is not None else None
    for u, target in zip(split.valid.users, split.valid.targets, strict=True):
        train[u] = np.append(train[u], target)
        if flags is not None:
            flags[u] = np.append(flags[u], False)
    seed_everything(seed)
    model = build_model(model_name, {**params, **epochs}, seed=seed)
    model.fit(dataclasses.replace(fit_split, train=train, train_synthetic=flags))
    return model


def expand_grid(
    base: list[dict[str, Any]], grid: dict[str, list[Any]], cls: type[Recommender]
) -> list[dict[str, Any]]:
    """Every base candidate crossed with every combination of the grid's values."""
    unknown = sorted(set(grid) - set(cls.Config.model_fields))
    if unknown:
        raise ConfigError(
            f"selection.grid: {unknown[0]!r} is not a {cls.name} setting; expected one of "
            f"{sorted(cls.Config.model_fields)}"
        )
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise ConfigError(f"selection.grid.{empty[0]}: needs at least one value, got []")
    out = []
    for params in base:
        for values in itertools.product(*grid.values()):
            out.append({**params, **dict(zip(grid, values, strict=True))})
    return out


# Settings that only the in-process trainer implements.
_RECIPE_DEFAULTS = {"synthetic_weight": 1.0, "finetune": False, "adv_eps": 0.0, "text": "off"}


def _refuse_recipes_on_ray(grid: list[dict[str, Any]], config: TrainConfig) -> None:
    """Recipes train in-process for now: say so instead of silently training without them."""
    for params in grid:
        for key, default in _RECIPE_DEFAULTS.items():
            if params.get(key, default) != default:
                raise ConfigError(
                    f"model.{key}: {params[key]!r} trains in-process only; use --num-workers 0"
                )
    if config.augment is not None:
        raise ConfigError("augment: in-process generation trains in-process; use --num-workers 0")


def _augment_in_process(
    split: Split, values: dict[str, Any], seed: int
) -> tuple[Split, dict[str, Any], tuple[Any, dict[str, Any], dict[str, Any]]]:
    """Generate a synthetic set with the augment core; returns the split to fit and records.

    The set, its report and the generator are written into the run directory by
    `rundir.write_run` (`rundir.AUGMENTATION`).
    """
    from augrec.augment.outputs import build_report
    from augrec.augment.pipeline import AugmentConfig, augment
    from augrec.augment.report import privacy_failures
    from augrec.augment.synthetic_set import augmented_split
    from augrec.rundir import AUGMENTATION

    t0 = time.perf_counter()
    synth, info = augment(split, AugmentConfig(**values), seed=seed)
    report = build_report(split, synth, info, seed)
    failures = privacy_failures(report)
    if failures:
        # Recorded in metrics.json and the report; whether such a model ships is the gate's call.
        log.warning("synthetic set fails privacy gates: %s", "; ".join(failures))
    record = {
        "path": AUGMENTATION,
        "in_process": True,
        "method": synth.method,
        "synthetic_interactions": synth.n_interactions,
        "synthetic_share": round(synth.share(split), 6),
        "users_extended": len(synth.prefixes),
        "extra_sequences": len(synth.extra),
        "privacy_passed": not failures,
        "privacy_failures": failures,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info("augmentation in-process: %s", record)
    return augmented_split(split, synth), record, (synth, info, report)


# ---- distributed fit (Ray Train) ------------------------------------------------------------


class RecommenderJob(BaseModel):
    """What `fit_worker` needs beyond the launcher's `JobSpec` (its `config`)."""

    model_config = ConfigDict(extra="forbid")

    split: dict[str, Any]  # SplitConfig values
    model: str
    params: dict[str, Any]
    augment: str | None = None  # URI of a synthetic set to train on (real + synthetic)


def fit_worker(spec: Any, ctx: Any) -> None:
    """Ray Train worker entry: fit a gradient-trained recommender, rank 0 validating.

    `spec` is the launcher's `JobSpec` (dataset URI, seed, a `RecommenderJob` as `config`);
    `ctx` its `WorkerContext`. Every worker rebuilds the split from the same data.
    """
    from augrec.config import SplitConfig
    from augrec.training.loop import LossModule, train_sequences
    from augrec.training.progress import ConsoleReporter

    job = RecommenderJob(**spec.config)
    split_cfg = SplitConfig(**job.split)
    ds = load_dataset(ctx.local(spec.data))
    split = make_split(ds, split_cfg.kind, split_cfg.test_cutoff, split_cfg.valid_cutoff)
    fit_split = split
    if job.augment is not None:
        from augrec.augment.synthetic_set import augmented_split, load

        fit_split = augmented_split(split, load(ctx.local(job.augment), split))
    model = build_model(job.model, {**job.params, "device": str(ctx.device)}, seed=spec.seed)
    net, cfg = model.build(split.n_items, split.item_attributes), model.config
    validate = validation_ndcg(split)
    reporter = ctx.reporter
    if ctx.rank == 0:
        prefix = f"[ray {job.model} rank 0/{ctx.world_size}] "
        reporter = reporter.also(ConsoleReporter(cfg.epochs, prefix=prefix))
    train_sequences(
        net,
        fit_split.train,
        cfg,
        seed=spec.seed,
        validate=(lambda: validate(model)) if ctx.rank == 0 else None,
        reporter=reporter,
        resume=ctx.resume,
        rank=ctx.rank,
        world_size=ctx.world_size,
        loss_module=ctx.prepare_model(LossModule(net, cfg)),
    )


def fit_with_ray(
    model: Any,
    data: str | Path,
    split: Any,
    ray_cfg: RayConfig,
    n_items: int,
    item_attributes: Any,
    augment: str | Path | None = None,
) -> dict[str, Any]:
    """Train `model` (a SASRec-like `Recommender` with `build`) on Ray Train workers.

    The workers get the dataset (and synthetic set) by URI: `ray_train.stage` uploads local
    ones to `ray_cfg.staging` when set. Returns a summary of the fit; `model` ends holding
    the best validated weights.
    """
    from augrec.training import ray_train

    spec = ray_train.JobSpec(
        entry="augrec.training.run:fit_worker",
        data=ray_train.stage(data, ray_cfg),
        seed=model.seed,
        config=RecommenderJob(
            split=split.model_dump(),
            model=model.name,
            params=model.config.model_dump(exclude={"device"}),
            augment=ray_train.stage(augment, ray_cfg) if augment is not None else None,
        ).model_dump(),
    )
    state = ray_train.run_trainer(spec, ray_cfg)
    model.build(n_items, item_attributes)
    model.net.load_state_dict(state["best_state"] or state["net"])
    history = state["history"]
    return {
        "best_epoch": state["best_epoch"],
        "best_valid_ndcg@10": round(float(state["best_score"]), 6),
        "epochs_run": state["epoch"],
        "num_workers": ray_cfg.num_workers,
        "data_uri": spec.data,
        "resumed_from_epochs": [h["resumed_from"] for h in history if "resumed_from" in h],
        "seconds_per_epoch": round(state["elapsed"] / max(state["epoch"], 1), 3),
        "checkpoint": state["checkpoint_path"],
    }
