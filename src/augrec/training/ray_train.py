"""Ray Train launcher: the only module that imports `ray.train` (ARCHITECTURE section 6).

It knows how to run *a* worker function on Ray Train, not what the function does: a typed
`JobSpec` names the entry by import path (`"augrec.augment.generator:fit_worker"`), the
dataset by URI, and carries the entry's own settings; every worker resolves the entry and
calls it with the spec and a `WorkerContext` (rank, device, DDP wrapping, the checkpoint to
resume from, a reporter that forwards per-epoch metrics and rank 0's checkpoint). The
launcher imports no domain code.

Workers on other nodes share no disk with the driver, so they get URIs, never the driver's
paths: `stage` uploads a local input to `RayConfig.staging` (object storage) under a
content-addressed name and returns its URI; workers fetch it once per machine through
`augrec.storage` (fsspec; `AUGREC_S3_ENDPOINT_URL` and the AWS variables must be set on
the workers too). Without `staging`, a local path is handed over as it is, which only works
where every node mounts the same disk (one machine, or a shared volume).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from augrec import storage

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
    staging: str | None = Field(
        None,
        description="object-storage URI (s3://bucket/prefix) the driver uploads local inputs "
        "to, so workers on other nodes read them by URI; None: hand over local paths",
    )


class JobSpec(BaseModel):
    """What every worker runs, as JSON-able values (Ray's `train_loop_config`).

    `entry` is `"package.module:function"`, called on each worker as `function(spec, ctx)`;
    `config` is the entry's own typed settings, dumped (the entry validates them).
    """

    model_config = ConfigDict(extra="forbid")

    entry: str = Field(pattern=r"^[\w.]+:\w+$")
    data: str = Field(description="dataset URI (s3://..., or a path every node can read)")
    seed: int = 0
    config: dict[str, Any] = Field(default_factory=dict)


@dataclass
class WorkerContext:
    """What the launcher gives a worker entry: where it runs and how to report."""

    rank: int
    world_size: int
    device: torch.device
    resume: dict[str, Any] | None  # the latest checkpoint's state after a restart
    reporter: Any  # `report(metrics, checkpoint=None)`; rank 0's checkpoint is kept
    prepare_model: Callable[[torch.nn.Module], torch.nn.Module]  # DDP wrapping

    @staticmethod
    def local(uri: str) -> Path:
        """A local path holding what `uri` names (fetched once per machine, then cached)."""
        return storage.local_copy(uri)


def resolve_entry(entry: str) -> Callable[[JobSpec, WorkerContext], None]:
    """Import `"package.module:function"` and return the function."""
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if path.is_dir() else f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def stage(path: str | os.PathLike[str], ray_cfg: RayConfig) -> str:
    """The URI workers read `path` from: uploaded to `ray_cfg.staging` when it is local.

    The upload is named by content (`<staging>/<name>-<sha256 prefix>`), so a changed file
    gets a new URI and no worker's cached copy is ever stale; an unchanged one is not
    uploaded again.
    """
    if storage.is_remote(path):
        return str(path)
    local = Path(storage.strip_file_scheme(path)).resolve()
    if ray_cfg.staging is None:
        if ray_cfg.ray_address is not None:
            log.warning(
                "workers get the driver-local path %s: set staging (object storage) unless "
                "every node mounts it",
                local,
            )
        return str(local)
    uri = storage.join(ray_cfg.staging, f"{local.name}-{_digest(local)}")
    fs, target = storage.filesystem(uri)
    if not fs.exists(target):
        storage.upload(local, uri)
        log.info("staged %s at %s", local, uri)
    return uri


class _RayReporter:
    """Forwards the loop's per-epoch report to `ray.train.report`; rank 0 attaches the state."""

    def __init__(self, rank: int, extra: Any = None):
        self.rank = rank
        self.extra = extra

    def also(self, extra: Any) -> _RayReporter:
        """Also pass every report to `extra` (e.g. a console progress line on rank 0)."""
        self.extra = extra
        return self

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
    """Runs on every Ray Train worker: resolve the spec's entry and call it."""
    import ray.train
    import ray.train.torch

    spec = JobSpec(**config)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.manual_seed(spec.seed)
    resume = None
    latest = ray.train.get_checkpoint()
    if latest is not None:
        resume = _load_state(latest)
        log.warning("worker %d resuming from epoch %d", rank, resume["epoch"])
    entry = resolve_entry(spec.entry)
    entry(
        spec,
        WorkerContext(
            rank=rank,
            world_size=world,
            device=ray.train.torch.get_device(),
            resume=resume,
            reporter=_RayReporter(rank),
            prepare_model=ray.train.torch.prepare_model,
        ),
    )


def run_trainer(spec: JobSpec, ray_cfg: RayConfig) -> dict[str, Any]:
    """Run `spec` on Ray Train workers and return the last checkpoint's state dict."""
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
            train_loop_config=spec.model_dump(),
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
