"""A typed RayJob config and the pure function that renders it as a KubeRay `ray.io/v1` manifest.

The pipeline's training and augmentation components run their work on Kubernetes as a KubeRay
`RayJob` whose entrypoint is the `augrec` CLI. `RayJobConfig` holds every knob; `render_rayjob`
turns it into the dict the API server takes (no I/O, no `kubernetes` import), so the manifest
can be checked against KubeRay's CRD schema in tests. `launcher.run_rayjob` submits it.

Choices the manifest makes, and why:

- GPUs, nodeSelector, tolerations and affinity go on the worker group only: the head runs the
  driver and Ray's control plane, and must not hold (or wait for) an accelerator node.
- The head offers no logical CPUs to Ray by default (`num-cpus: "0"`), so tasks and actors land
  on workers and a busy head cannot starve the GCS (KubeRay's advice for production).
- `/dev/shm` is a memory-medium emptyDir on every Ray pod: Ray's object store lives there and
  the container default (64 MiB) makes Ray fall back to slow disk.
- Every pod, the submitter included, runs as a non-root numeric user with no privilege
  escalation, all capabilities dropped and the runtime's default seccomp profile, which the
  Kubernetes "restricted" Pod Security Standard asks for. The `rayproject/ray` images (and ours,
  built on them) run as uid 1000, gid 100.
"""

from __future__ import annotations

import copy
import re
import secrets
import shlex
import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

API_VERSION = "ray.io/v1"
KIND = "RayJob"
GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"

# KubeRay names the RayCluster after the RayJob plus a suffix, and the cluster's Services after
# that, so it accepts only DNS-1035 labels (a letter first) of at most 53 - 6 characters.
MAX_RAYJOB_NAME = 47
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# Kubernetes resource quantities, as the CRD's schema spells them, without a sign.
_QUANTITY = re.compile(
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_RAY_VERSION = re.compile(r"^\d+\.\d+\.\d+$")

# The submitter pod only runs `ray job submit` and follows the logs: KubeRay's own defaults.
_SUBMITTER_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "200Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
_HEAD_PORTS = [
    {"containerPort": 6379, "name": "gcs-server"},
    {"containerPort": 8265, "name": "dashboard"},
    {"containerPort": 10001, "name": "client"},
]
_SHM_VOLUME = "dshm"


def _field(info: ValidationInfo) -> str:
    return info.field_name or "value"


def _check_dns1035(name: str, value: str, max_len: int) -> str:
    if len(value) > max_len or not _DNS1035.match(value):
        raise ValueError(
            f"{name}={value!r} is not a valid name: it must be at most {max_len} characters of "
            "lower-case letters, digits and '-', start with a letter and end with a letter or "
            "digit (an RFC 1035 label, the subset of RFC 1123 that KubeRay accepts)"
        )
    return value


def _check_dns1123_label(name: str, value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{name}={value!r} is not a valid RFC 1123 label: at most 63 characters of "
            "lower-case letters, digits and '-', starting and ending with a letter or digit"
        )
    return value


def _check_dns1123_subdomain(name: str, value: str) -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"{name}={value!r} is not a valid RFC 1123 subdomain: at most 253 characters of "
            "lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
        )
    return value


def _check_quantity(name: str, value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError(
            f"{name}={value!r} is not a Kubernetes quantity (e.g. '500m', '2', '8Gi', '1.5')"
        )
    return value


def _check_qualified_name(name: str, value: str) -> str:
    """A label key or extended-resource name: an optional DNS-subdomain prefix, '/', a name."""
    prefix, _, base = value.rpartition("/")
    ok = bool(_LABEL_NAME.match(base)) and len(base) <= 63
    if prefix:
        ok = ok and len(prefix) <= 253 and bool(_DNS1123_SUBDOMAIN.match(prefix))
    if not ok:
        raise ValueError(
            f"{name}: {value!r} is not a valid qualified name ([prefix/]name, the name at most "
            "63 letters, digits, '-', '_' or '.', the prefix a DNS subdomain)"
        )
    return value


def _check_labels(name: str, labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        _check_qualified_name(f"{name} key", key)
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ValueError(
                f"{name}[{key!r}]={value!r} is not a valid label value: at most 63 letters, "
                "digits, '-', '_' or '.', starting and ending with a letter or digit"
            )
    return labels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Resources(_Strict):
    """CPU and memory of one Ray container; limits default to the requests.

    Ray sizes its own view of the node from the limits, and a memory limit above the request
    lets the kernel kill a Ray pod under node pressure, so equal values are the safe default.
    """

    cpu: str = "2"
    memory: str = "8Gi"
    cpu_limit: str | None = None
    memory_limit: str | None = None
    shm_size: str = Field("2Gi", description="size limit of the /dev/shm memory emptyDir")

    @field_validator("cpu", "memory", "cpu_limit", "memory_limit", "shm_size")
    @classmethod
    def _quantity(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _check_quantity(_field(info), v)

    def _resources(self) -> dict[str, dict[str, str | int]]:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {
                "cpu": self.cpu_limit or self.cpu,
                "memory": self.memory_limit or self.memory,
            },
        }


class HeadConfig(_Resources):
    """The Ray head pod: driver, GCS and dashboard. It never gets a GPU or GPU-pool placement."""

    num_cpus: int | None = Field(
        0,
        ge=0,
        description="logical CPUs the head offers Ray; 0 keeps tasks and actors on workers, "
        "None lets Ray count the container's CPUs",
    )


class Toleration(_Strict):
    """A pod toleration (for GPU node taints such as `nvidia.com/gpu=present:NoSchedule`)."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, description="only with effect NoExecute")

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError(f"value={self.value!r} must be empty when operator is 'Exists'")
        if self.key is None and self.operator != "Exists":
            raise ValueError("key=None needs operator 'Exists' (it tolerates every taint)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError(
                f"toleration_seconds={self.toleration_seconds} needs effect 'NoExecute', "
                f"got {self.effect!r}"
            )
        return self

    def render(self) -> dict[str, Any]:
        """The Kubernetes `Toleration` object (camelCase, unset fields left out)."""
        out: dict[str, Any] = {"operator": self.operator}
        if self.key is not None:
            out["key"] = self.key
        if self.value is not None:
            out["value"] = self.value
        if self.effect is not None:
            out["effect"] = self.effect
        if self.toleration_seconds is not None:
            out["tolerationSeconds"] = self.toleration_seconds
        return out


class WorkerConfig(_Resources):
    """The one worker group; `gpus=0` makes it a CPU pool.

    Placement (`node_selector`, `tolerations`, `affinity`) applies to these pods only.
    """

    group_name: str = "workers"
    replicas: int = Field(1, ge=0)
    min_replicas: int | None = Field(None, ge=0, description="None = replicas")
    max_replicas: int | None = Field(None, ge=0, description="None = replicas")
    cpu: str = "4"
    memory: str = "16Gi"
    shm_size: str = Field("4Gi", description="size limit of the /dev/shm memory emptyDir")
    gpus: int = Field(0, ge=0, description="GPUs per worker; 0 = a CPU pool")
    gpu_resource: str = "nvidia.com/gpu"
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    affinity: dict[str, Any] | None = Field(None, description="a Kubernetes `Affinity` object")

    @field_validator("group_name")
    @classmethod
    def _group_name(cls, v: str, info: ValidationInfo) -> str:
        return _check_dns1123_label(_field(info), v)

    @field_validator("gpu_resource")
    @classmethod
    def _gpu_resource(cls, v: str, info: ValidationInfo) -> str:
        return _check_qualified_name(_field(info), v)

    @field_validator("node_selector")
    @classmethod
    def _node_selector(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return _check_labels(_field(info), v)

    @model_validator(mode="after")
    def _replica_bounds(self) -> WorkerConfig:
        lo, hi = self.lowest, self.highest
        if not lo <= self.replicas <= hi:
            raise ValueError(
                f"replicas={self.replicas} must lie within min_replicas={lo} and max_replicas={hi}"
            )
        return self

    @property
    def lowest(self) -> int:
        """`min_replicas`, defaulting to `replicas`."""
        return self.replicas if self.min_replicas is None else self.min_replicas

    @property
    def highest(self) -> int:
        """`max_replicas`, defaulting to `replicas`."""
        return self.replicas if self.max_replicas is None else self.max_replicas


class RayJobConfig(_Strict):
    """Everything `render_rayjob` needs; loads from YAML through `augrec.config.load_yaml_config`.

    `entrypoint` is an argv list, e.g. `["augrec", "train", "--data", "s3://b/d.parquet", ...,
    "--ray-address", "auto"]`; it is quoted with `shlex.join` into the RayJob's shell command,
    so arguments with spaces or shell characters arrive unchanged.
    """

    name: str = Field(description=f"RayJob name: RFC 1035 label, <= {MAX_RAYJOB_NAME} chars")
    namespace: str = "default"
    image: str = Field(description="an image with augrec and Ray installed")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    entrypoint: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict, description="set on head and workers")
    env_from_secrets: list[str] = Field(
        default_factory=list, description="Secrets whose keys become env vars on every Ray pod"
    )
    service_account: str | None = None
    ray_version: str = "2.60.0"
    head: HeadConfig = Field(default_factory=HeadConfig)
    workers: WorkerConfig = Field(default_factory=WorkerConfig)
    ttl_seconds_after_finished: int = Field(
        300, ge=0, description="KubeRay deletes the Ray cluster this long after the job ends"
    )
    active_deadline_seconds: int | None = Field(
        6 * 3600, gt=0, description="KubeRay fails the job (DeadlineExceeded) after this long"
    )
    shutdown_after_job_finishes: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    run_as_user: int = Field(1000, ge=1, description="non-root uid of every pod")
    run_as_group: int = Field(100, ge=0)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str, info: ValidationInfo) -> str:
        return _check_dns1035(_field(info), v, MAX_RAYJOB_NAME)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str, info: ValidationInfo) -> str:
        return _check_dns1123_label(_field(info), v)

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _check_dns1123_subdomain(_field(info), v)

    @field_validator("env_from_secrets")
    @classmethod
    def _secrets(cls, v: list[str], info: ValidationInfo) -> list[str]:
        for secret in v:
            _check_dns1123_subdomain(_field(info), secret)
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str, info: ValidationInfo) -> str:
        if not v or any(c.isspace() for c in v):
            raise ValueError(f"{_field(info)}={v!r} must be a non-empty image reference")
        return v

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if not v[0].strip():
            raise ValueError(f"{_field(info)}={v!r}: the program (first item) is empty")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key in v:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{_field(info)} key {key!r} is not a valid variable name")
        return v

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        return _check_labels(_field(info), v)

    @field_validator("ray_version")
    @classmethod
    def _ray_version(cls, v: str, info: ValidationInfo) -> str:
        if not _RAY_VERSION.match(v):
            raise ValueError(f"{_field(info)}={v!r} must look like '2.60.0'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RayJobConfig:
        if self.ttl_seconds_after_finished > 0 and not self.shutdown_after_job_finishes:
            # KubeRay rejects this pair: the TTL counts down to the cluster's shutdown.
            raise ValueError(
                f"ttl_seconds_after_finished={self.ttl_seconds_after_finished} needs "
                "shutdown_after_job_finishes=True (set the TTL to 0 to keep the cluster)"
            )
        if self.head.num_cpus == 0 and self.workers.highest == 0:
            raise ValueError(
                "head.num_cpus=0 and workers.max_replicas=0 leave Ray no CPU to run on: "
                "add workers or let the head take work (head.num_cpus=None)"
            )
        return self

    @property
    def entrypoint_command(self) -> str:
        """The shell command KubeRay runs: the argv quoted with `shlex.join`."""
        return shlex.join(self.entrypoint)


def unique_name(base: str, length: int = 5) -> str:
    """`base` plus a random suffix, cut to fit a RayJob name (for retried pipeline steps).

    Raises:
        ValueError: `base` does not start a valid RayJob name.
    """
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(length))
    stem = base[: MAX_RAYJOB_NAME - length - 1].rstrip("-")
    return _check_dns1035("name", f"{stem}-{suffix}", MAX_RAYJOB_NAME)


def _pod_security(cfg: RayJobConfig) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": cfg.run_as_user,
        "runAsGroup": cfg.run_as_group,
        "fsGroup": cfg.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security(cfg: RayJobConfig) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": cfg.run_as_user,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _ray_container(cfg: RayJobConfig, name: str, resources: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "resources": resources,
        "securityContext": _container_security(cfg),
        "volumeMounts": [{"name": _SHM_VOLUME, "mountPath": "/dev/shm"}],
    }
    if cfg.env:
        container["env"] = [{"name": k, "value": v} for k, v in sorted(cfg.env.items())]
    if cfg.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in cfg.env_from_secrets]
    return container


def _pod_spec(cfg: RayJobConfig, container: dict[str, Any], shm_size: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "securityContext": _pod_security(cfg),
        "containers": [container],
        "volumes": [{"name": _SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}}],
    }
    if cfg.service_account is not None:
        spec["serviceAccountName"] = cfg.service_account
    return spec


def render_rayjob(cfg: RayJobConfig) -> dict[str, Any]:
    """Render `cfg` as a KubeRay `ray.io/v1` `RayJob` manifest (a plain, JSON-able dict)."""
    labels = {"app.kubernetes.io/part-of": "augrec", **cfg.labels}
    head, workers = cfg.head, cfg.workers

    head_container = _ray_container(cfg, "ray-head", head._resources())
    head_container["ports"] = [dict(p) for p in _HEAD_PORTS]
    # The submitter pod reaches the dashboard from outside the head pod.
    head_params = {"dashboard-host": "0.0.0.0"}
    if head.num_cpus is not None:
        head_params["num-cpus"] = str(head.num_cpus)

    worker_resources = workers._resources()
    worker_params: dict[str, str] = {}
    if workers.gpus:
        # Extended resources cannot be overcommitted: request and limit must be equal.
        worker_resources["requests"][workers.gpu_resource] = workers.gpus
        worker_resources["limits"][workers.gpu_resource] = workers.gpus
        # KubeRay only infers Ray's GPU count from resource names it knows; say it outright.
        worker_params["num-gpus"] = str(workers.gpus)
    worker_spec = _pod_spec(
        cfg, _ray_container(cfg, "ray-worker", worker_resources), workers.shm_size
    )
    if workers.node_selector:
        worker_spec["nodeSelector"] = dict(workers.node_selector)
    if workers.tolerations:
        worker_spec["tolerations"] = [t.render() for t in workers.tolerations]
    if workers.affinity is not None:
        worker_spec["affinity"] = copy.deepcopy(workers.affinity)

    # Without a template KubeRay's submitter pod would run as the image's user with no
    # securityContext, which a "restricted" namespace refuses. KubeRay fills in its command.
    submitter_container = {
        "name": "ray-job-submitter",
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "resources": {k: dict(v) for k, v in _SUBMITTER_RESOURCES.items()},
        "securityContext": _container_security(cfg),
    }
    submitter_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": _pod_security(cfg),
        "containers": [submitter_container],
    }
    if cfg.service_account is not None:
        submitter_spec["serviceAccountName"] = cfg.service_account

    spec: dict[str, Any] = {
        "entrypoint": cfg.entrypoint_command,
        "submissionMode": "K8sJobMode",
        "shutdownAfterJobFinishes": cfg.shutdown_after_job_finishes,
        "ttlSecondsAfterFinished": cfg.ttl_seconds_after_finished,
        "submitterPodTemplate": {"metadata": {"labels": dict(labels)}, "spec": submitter_spec},
        "rayClusterSpec": {
            "rayVersion": cfg.ray_version,
            "headGroupSpec": {
                "rayStartParams": head_params,
                "template": {
                    "metadata": {"labels": dict(labels)},
                    "spec": _pod_spec(cfg, head_container, head.shm_size),
                },
            },
            "workerGroupSpecs": [
                {
                    "groupName": workers.group_name,
                    "replicas": workers.replicas,
                    "minReplicas": workers.lowest,
                    "maxReplicas": workers.highest,
                    "rayStartParams": worker_params,
                    "template": {"metadata": {"labels": dict(labels)}, "spec": worker_spec},
                }
            ],
        },
    }
    if cfg.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = cfg.active_deadline_seconds
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": cfg.name, "namespace": cfg.namespace, "labels": labels},
        "spec": spec,
    }
