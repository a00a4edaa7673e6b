"""Kubernetes adapters: render a KubeRay RayJob and launch it (`rayjob`, `launcher`).

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
    "render_rayjob",
    "run_rayjob",
    "unique_name",
]
