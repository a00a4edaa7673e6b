"""Ray Train on a real two-node local cluster: data-parallel quality and worker-failure recovery."""

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from augrec.config import TrainConfig
from augrec.training.ray_train import RayConfig, ray_init_kwargs
from augrec.training.run import train_and_evaluate

pytestmark = pytest.mark.ray

PARAMS = {"epochs": 8, "eval_every": 2, "hidden": 32, "dropout": 0.2, "batch_size": 64}


@pytest.fixture(scope="module")
def two_node_cluster(s3_server, tmp_path_factory):
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray.cluster_utils import Cluster

    # Two raylets on loopback; logical CPUs let one 2-CPU worker land on each node.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=2)
    kwargs = ray_init_kwargs()
    kwargs.pop("include_dashboard")
    # Workers reach the S3 server as pods would (the chart passes these from a Secret), and
    # fetch into a cache of their own.
    worker_cache = str(tmp_path_factory.mktemp("worker-cache"))
    kwargs["runtime_env"]["env_vars"] = {**s3_server.env(), "AUGREC_CACHE_DIR": worker_cache}
    ray.init(address=cluster.address, **kwargs)
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def ray_cfg(tmp_path: Path, **kw) -> RayConfig:
    return RayConfig(num_workers=2, cpus_per_worker=2, storage_path=str(tmp_path), **kw)


def test_two_workers_on_two_nodes_reach_the_one_worker_band(
    two_node_cluster, synthetic_dir, tmp_path
):
    cfg = TrainConfig(model=PARAMS)
    single = train_and_evaluate(synthetic_dir, "sasrec", cfg, seed=0).metrics()
    multi = train_and_evaluate(
        synthetic_dir, "sasrec", cfg, seed=0, ray_cfg=ray_cfg(tmp_path, run_name="band")
    ).metrics()
    fit = multi["selection"]["candidates"][0]
    assert fit["num_workers"] == 2
    one, two = single["valid"]["ndcg@10"], multi["valid"]["ndcg@10"]
    # Two workers average gradients over twice the batch, so they take half the steps per
    # epoch; within 25% of one worker after the same epochs is the same band.
    assert two >= 0.75 * one, (one, two)
    assert multi["test"]["ndcg@10"] > 0.1


def kill_a_worker_after_two_checkpoints(storage: Path, done: threading.Event, killed: list):
    # Ray Train's controller collects reported checkpoints by polling the workers; give it
    # a few seconds after the second one so that at least one is registered before the kill.
    while not done.is_set():
        if len(list(storage.rglob("checkpoint_*"))) >= 2:
            time.sleep(4)
            for proc in psutil.process_iter(["pid", "cmdline"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if "RayTrainWorker" in cmd:
                    os.kill(proc.info["pid"], signal.SIGKILL)
                    killed.append(proc.info["pid"])
                    return
        time.sleep(0.2)


def test_killed_worker_resumes_from_last_checkpoint(two_node_cluster, synthetic_dir, tmp_path):
    done, killed = threading.Event(), []
    watcher = threading.Thread(
        target=kill_a_worker_after_two_checkpoints, args=(tmp_path, done, killed), daemon=True
    )
    watcher.start()
    try:
        run = train_and_evaluate(
            synthetic_dir,
            "sasrec",
            TrainConfig(model={**PARAMS, "epochs": 12, "eval_every": 1}),
            seed=0,
            ray_cfg=ray_cfg(tmp_path, run_name="kill", max_failures=2),
        )
    finally:
        done.set()
    assert killed, "no Ray Train worker process was found to kill"
    fit = run.metrics()["selection"]["candidates"][0]
    assert fit["epochs_run"] == 12  # finished every epoch
    assert fit["resumed_from_epochs"] and min(fit["resumed_from_epochs"]) >= 1  # not from scratch
    assert run.metrics()["test"]["ndcg@10"] > 0.05


def test_generator_pretrains_on_ray_workers_from_s3(
    two_node_cluster, synthetic_dir, s3_server, tmp_path, monkeypatch
):
    """The workers read the data from S3: the driver's own copy is gone before they start."""
    from augrec.augment.pipeline import AugmentConfig, augment
    from augrec.config import SplitConfig
    from augrec.data.loaders import load_dataset
    from augrec.data.splits import leave_one_out
    from augrec.training import ray_train

    local = tmp_path / "driver" / "shop"
    shutil.copytree(synthetic_dir, local)
    staged = []

    def stage_then_delete(path, cfg):
        uri = real_stage(path, cfg)
        shutil.rmtree(local)  # from here on, the driver's path exists nowhere
        staged.append(uri)
        return uri

    real_stage = ray_train.stage
    monkeypatch.setattr(ray_train, "stage", stage_then_delete)
    split = leave_one_out(load_dataset(local))
    cfg = AugmentConfig(method="mle", generator={"epochs": 2, "hidden": 16})
    staging = s3_server.uri("staging")
    rcfg = ray_cfg(tmp_path, run_name="gen", staging=staging)
    synth, info = augment(split, cfg, seed=0, ray=(local, SplitConfig(), rcfg))
    assert not local.exists() and info["mle"]["data_uri"] == staged[0]
    assert staged[0].startswith(f"{staging}/shop-")
    assert info["mle"]["num_workers"] == 2 and info["mle"]["epochs_run"] == 2
    assert synth.n_interactions > 0
    # the pre-trained generator prefers real histories to shuffled ones
    real = [s for s in split.train if len(s) >= 4][:300]
    rng = np.random.default_rng(0)
    fake = [rng.integers(1, split.n_items + 1, size=len(s)) for s in real]
    gen = info["generator"]
    assert gen.log_likelihood(real).mean() > gen.log_likelihood(fake).mean()
