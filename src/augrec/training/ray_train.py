"""Ray Train launcher: the only module that imports `ray.train` (ARCHITECTURE section 6).

The worker function rebuilds the data split from the same file on every worker, wraps the
plain torch loop (`training/loop.py`) in DDP (gloo on CPU, nccl on GPU), reports per-epoch
metrics with a checkpoint from rank 0, and resumes from the latest checkpoint after a
worker failure. The driver then loads the best validated weights into the model, so test
evaluation happens once, in-process, exactly as without Ray.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from augrec.config import SplitConfig

log = logging.getLogger(__name__)
STATE_FILE = "state.pt"


class RayConfig(BaseModel):
    """How to scale training; crosses into Ray as plain values."""

    model_config = ConfigDict(extra="forbid")

    num_workers: int = Field(0, ge=0, description="0 = plain torch in this process, no Ray")
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(1.0, ge=0)
    ray_address: str | None = Field(None, description="existing cluster; None = local Ray")
    max_failures: int = Field(2, ge=-1, description="worker-group restarts; -1 = unlimited")
    storage_path: str | None = Field(None, description="checkpoints; default ~/ray_results")
    run_name: str | None = Field(None, description="same name + storage resumes a run")


class WorkerJob(BaseModel):
    """Everything a worker needs, as JSON-able values (Ray's `train_loop_config`).

    `task` is "recommender" (fit a model, validating on rank 0) or "generator" (maximum
    likelihood of the reverse generator on member users' reversed histories).
    """

    task: Literal["recommender", "generator"] = "recommender"
    data: str
    split: dict[str, Any]
    model: str
    params: dict[str, Any]
    seed: int
    augment: str | None = None
    holdout_share: float = 0.0


class _RayReporter:
    """Forwards the loop's per-epoch report to `ray.train.report`; rank 0 attaches the state."""

    def __init__(self, rank: int, extra: Any = None):
        self.rank = rank
        self.extra = extra

    def report(self, metrics: dict[str, Any], checkpoint: dict[str, Any] | None = None) -> None:
        import ray.train

        clean = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}
        if self.extra is not None:
            self.extra.report(metrics)
        if self.rank == 0 and checkpoint is not None:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save(checkpoint, Path(tmp) / STATE_FILE)
                ray.train.report(clean, checkpoint=ray.train.Checkpoint.from_directory(tmp))
        else:
            ray.train.report(clean)


def quiet_ray_logs() -> None:
    """Runs in every Ray worker process (a `worker_process_setup_hook`).

    Without Ray's optional dashboard the placement-group watchdog cannot reach the state API
    and warns every few seconds for the whole run; the warning is harmless.
    """
    logging.getLogger(
        "ray.train.v2._internal.execution.controller.placement_group_cleaner"
    ).setLevel(logging.ERROR)


def ray_init_kwargs() -> dict[str, Any]:
    """Arguments for `ray.init` that every augrec entry point (and test) uses."""
    return {
        "include_dashboard": False,
        "runtime_env": {"worker_process_setup_hook": "augrec.training.ray_train.quiet_ray_logs"},
    }


def _load_state(checkpoint: Any) -> dict[str, Any]:
    with checkpoint.as_directory() as d:
        return torch.load(Path(d) / STATE_FILE, weights_only=False)


def train_worker(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray.train
    import ray.train.torch

    from augrec.data.loaders import load_dataset
    from augrec.data.splits import make_split
    from augrec.evaluation.evaluate import validation_ndcg
    from augrec.models import build_model
    from augrec.training.loop import LossModule, train_sequences
    from augrec.training.progress import ConsoleReporter

    job = WorkerJob(**config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(job.seed)
    split_cfg = SplitConfig(**job.split)
    ds = load_dataset(job.data)
    split = make_split(ds, split_cfg.kind, split_cfg.test_cutoff, split_cfg.valid_cutoff)
    fit_split = split
    if job.augment is not None:
        from augrec.augment.synthetic_set import augmented_split, load

        fit_split = augmented_split(split, load(Path(job.augment), split))
    device = ray.train.torch.get_device()
    params = {**job.params, "device": str(device)}
    if job.task == "generator":
        from augrec.augment.generator import ReverseGenerator, reverse_all
        from augrec.augment.pipeline import member_mask
        from augrec.models.sasrec import SASRecConfig

        cfg = SASRecConfig(**params)
        gen = ReverseGenerator(split.n_items, cfg, seed=job.seed)
        members = member_mask(len(split.train), job.holdout_share, job.seed)
        sequences = reverse_all([s for s, m in zip(split.train, members, strict=True) if m])
        net, validate_fn = gen.net.to(device), None
    else:
        model = build_model(job.model, params, seed=job.seed)
        net, cfg = model.build(split.n_items, split.item_attributes), model.config
        sequences = fit_split.train
        validate = validation_ndcg(split)
        validate_fn = (lambda: validate(model)) if rank == 0 else None
    loss_module = ray.train.torch.prepare_model(LossModule(net, cfg))
    resume = None
    latest = ray.train.get_checkpoint()
    if latest is not None:
        resume = _load_state(latest)
        log.warning("worker %d resuming from epoch %d", rank, resume["epoch"])
    prefix = f"[ray {job.task} rank 0/{world}] "
    console = ConsoleReporter(cfg.epochs, prefix=prefix) if rank == 0 else None
    train_sequences(
        net,
        sequences,
        cfg,
        seed=job.seed,
        validate=validate_fn,
        reporter=_RayReporter(rank, console),
        resume=resume,
        rank=rank,
        world_size=world,
        loss_module=loss_module,
    )


def run_trainer(job: WorkerJob, ray_cfg: RayConfig) -> dict[str, Any]:
    """Run `train_worker` on Ray Train and return the last checkpoint's state dict."""
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    # Local runs do not need Ray's token auth (it writes a token under $HOME).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started_here = False
    if not ray.is_initialized():
        kwargs = ray_init_kwargs()
        if ray_cfg.ray_address is not None:
            kwargs.pop("include_dashboard")  # a setting of the cluster, not of a client
        ray.init(address=ray_cfg.ray_address, **kwargs)
        started_here = True
    try:
        resources = {"CPU": ray_cfg.cpus_per_worker}
        if ray_cfg.use_gpu:
            resources["GPU"] = ray_cfg.gpus_per_worker
        trainer = TorchTrainer(
            train_worker,
            train_loop_config=job.model_dump(),
            torch_config=TorchConfig(backend="nccl" if ray_cfg.use_gpu else "gloo"),
            scaling_config=ray.train.ScalingConfig(
                num_workers=ray_cfg.num_workers,
                use_gpu=ray_cfg.use_gpu,
                resources_per_worker=resources,
            ),
            run_config=ray.train.RunConfig(
                name=ray_cfg.run_name,
                storage_path=ray_cfg.storage_path,
                failure_config=ray.train.FailureConfig(max_failures=ray_cfg.max_failures),
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            ),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError("Ray Train finished without a checkpoint")
        state = _load_state(result.checkpoint)
        state["checkpoint_path"] = str(result.checkpoint.path)
        return state
    finally:
        if started_here:
            ray.shutdown()


def fit_generator_with_ray(
    gen: Any, data: str | Path, split: SplitConfig, ray_cfg: RayConfig, holdout_share: float
) -> dict[str, Any]:
    """Maximum-likelihood pre-training of a `ReverseGenerator` on Ray Train workers."""
    job = WorkerJob(
        task="generator",
        data=str(Path(data).resolve()),
        split=split.model_dump(),
        model="generator",
        params=gen.cfg.model_dump(exclude={"device"}),
        seed=gen.seed,
        holdout_share=holdout_share,
    )
    state = run_trainer(job, ray_cfg)
    gen.net.load_state_dict(state["net"])
    return {
        "epochs_run": state["epoch"],
        "num_workers": ray_cfg.num_workers,
        "seconds_per_epoch": round(state["elapsed"] / max(state["epoch"], 1), 3),
    }


def fit_with_ray(
    model: Any,
    data: str | Path,
    split: SplitConfig,
    ray_cfg: RayConfig,
    n_items: int,
    item_attributes: Any,
    augment: str | Path | None = None,
) -> dict[str, Any]:
    """Train `model` (a SASRec-like `Recommender` with `build`) on Ray Train workers.

    Returns a summary of the fit; `model` ends holding the best validated weights.
    """
    job = WorkerJob(
        data=str(Path(data).resolve()),
        split=split.model_dump(),
        model=model.name,
        params=model.config.model_dump(exclude={"device"}),
        seed=model.seed,
        augment=str(Path(augment).resolve()) if augment is not None else None,
    )
    state = run_trainer(job, ray_cfg)
    model.build(n_items, item_attributes)
    model.net.load_state_dict(state["best_state"] or state["net"])
    history = state["history"]
    return {
        "best_epoch": state["best_epoch"],
        "best_valid_ndcg@10": round(float(state["best_score"]), 6),
        "epochs_run": state["epoch"],
        "num_workers": ray_cfg.num_workers,
        "resumed_from_epochs": [h["resumed_from"] for h in history if "resumed_from" in h],
        "seconds_per_epoch": round(state["elapsed"] / max(state["epoch"], 1), 3),
        "checkpoint": state["checkpoint_path"],
    }
