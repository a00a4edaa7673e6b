"""Kubernetes adapters: render and launch a KubeRay RayJob; roll the serving Deployment.

Importing this package does not import `kubernetes`; the launcher loads it when it runs.
"""

from augrec.k8s.launcher import (
    RayJobCancelled,
    RayJobError,
    RayJobExists,
    RayJobFailed,
    RayJobResult,
    RayJobTimeout,
    run_rayjob,
)
from augrec.k8s.rayjob import (
    HeadConfig,
    RayJobConfig,
    Toleration,
    WorkerConfig,
    render_rayjob,
    unique_name,
)
from augrec.k8s.rollout import (
    RolloutError,
    RolloutFailed,
    RolloutResult,
    RolloutTimeout,
    rollout,
)

__all__ = [
    "HeadConfig",
    "RayJobCancelled",
    "RayJobConfig",
    "RayJobError",
    "RayJobExists",
    "RayJobFailed",
    "RayJobResult",
    "RayJobTimeout",
    "Toleration",
    "WorkerConfig",
    "RolloutError",
    "RolloutFailed",
    "RolloutResult",
    "RolloutTimeout",
    "render_rayjob",
    "rollout",
    "run_rayjob",
    "unique_name",
]
