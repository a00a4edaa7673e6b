"""The rendered RayJob against KubeRay's CRD schema, and where each setting lands."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
import yaml
from k8s_helpers import SCHEMAS

from augrec.k8s import RayJobConfig, Toleration, WorkerConfig, render_rayjob

ARGV = [
    "augrec",
    "train",
    "--data",
    "s3://bucket/beauty/interactions.parquet",
    "--model",
    "sasrec",
    "--out",
    "s3://bucket/runs/it's here",
    "--num-workers",
    "2",
    "--use-gpu",
    "--ray-address",
    "auto",
]
GPU_TOLERATION = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
GPU_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "gpu-type", "operator": "In", "values": ["a100"]}]}
            ]
        }
    }
}


def default_cfg(**overrides: Any) -> RayJobConfig:
    return RayJobConfig(
        name="train-sasrec", image="ghcr.io/acme/augrec:0.1.0", entrypoint=ARGV, **overrides
    )


def gpu_cfg() -> RayJobConfig:
    return default_cfg(
        namespace="kubeflow-alice",
        env={"AWS_ENDPOINT_URL": "http://minio:9000", "RAY_AUTH_MODE": "disabled"},
        env_from_secrets=["s3-credentials"],
        service_account="pipeline-runner",
        labels={"team": "recsys"},
        workers=WorkerConfig(
            replicas=2,
            min_replicas=1,
            max_replicas=4,
            cpu="8",
            memory="32Gi",
            gpus=1,
            node_selector={"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"},
            tolerations=[GPU_TOLERATION],
            affinity=GPU_AFFINITY,
            shm_size="8Gi",
        ),
    )


def cpu_cfg() -> RayJobConfig:
    return default_cfg(
        workers=WorkerConfig(replicas=3, cpu="1500m", memory="6Gi", node_selector={"pool": "cpu"}),
        active_deadline_seconds=None,
        ttl_seconds_after_finished=0,
    )


CONFIGS = {"default": default_cfg, "gpu": gpu_cfg, "cpu": cpu_cfg}


@pytest.fixture(scope="module")
def rayjob_validator():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")
    path = SCHEMAS / "ray.io_rayjobs.yaml"
    if not path.exists():
        pytest.skip(f"KubeRay CRD schemas absent: {path.resolve()}")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = v1["schema"]["openAPIV3Schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def pods(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every pod template of the manifest by role."""
    spec = manifest["spec"]
    cluster = spec["rayClusterSpec"]
    (workers,) = cluster["workerGroupSpecs"]
    return {
        "head": cluster["headGroupSpec"]["template"]["spec"],
        "worker": workers["template"]["spec"],
        "submitter": spec["submitterPodTemplate"]["spec"],
    }


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_rendered_rayjob_validates_against_the_crd(kind, rayjob_validator):
    manifest = render_rayjob(CONFIGS[kind]())
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in rayjob_validator.iter_errors(manifest)
    ]
    assert errors == []
    assert manifest["apiVersion"] == "ray.io/v1" and manifest["kind"] == "RayJob"


def test_the_validator_does_catch_a_broken_manifest(rayjob_validator):
    manifest = render_rayjob(gpu_cfg())
    manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["maxReplicas"] = "four"
    manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0][
        "resources"
    ]["limits"]["memory"] = "lots"
    assert len(list(rayjob_validator.iter_errors(manifest))) == 2


def test_gpus_only_on_the_worker_group():
    manifest = render_rayjob(gpu_cfg())
    by_role = pods(manifest)
    worker = by_role["worker"]["containers"][0]["resources"]
    assert worker["requests"]["nvidia.com/gpu"] == 1 and worker["limits"]["nvidia.com/gpu"] == 1
    for role in ("head", "submitter"):
        for container in by_role[role]["containers"]:
            for section in container["resources"].values():
                assert not any("gpu" in key for key in section), (role, section)
    cluster = manifest["spec"]["rayClusterSpec"]
    assert cluster["workerGroupSpecs"][0]["rayStartParams"]["num-gpus"] == "1"
    assert "num-gpus" not in cluster["headGroupSpec"]["rayStartParams"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_custom_gpu_resource_name():
    cfg = default_cfg(workers=WorkerConfig(gpus=2, gpu_resource="amd.com/gpu"))
    worker = pods(render_rayjob(cfg))["worker"]["containers"][0]["resources"]
    assert worker["limits"]["amd.com/gpu"] == 2 and "nvidia.com/gpu" not in worker["limits"]


def test_cpu_pool_has_no_gpu_anywhere():
    manifest = render_rayjob(cpu_cfg())
    for role, spec in pods(manifest).items():
        for container in spec["containers"]:
            for section in container["resources"].values():
                assert not any("gpu" in key for key in section), role
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["rayStartParams"] == {}
    assert group["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "1500m",
        "memory": "6Gi",
    }


def test_placement_only_on_workers():
    by_role = pods(render_rayjob(gpu_cfg()))
    worker = by_role["worker"]
    assert worker["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"}
    assert worker["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert worker["affinity"] == GPU_AFFINITY
    for role in ("head", "submitter"):
        for key in ("nodeSelector", "tolerations", "affinity"):
            assert key not in by_role[role], (role, key)


def test_dev_shm_is_a_memory_emptydir_on_every_ray_pod():
    by_role = pods(render_rayjob(gpu_cfg()))
    for role, size in (("head", "2Gi"), ("worker", "8Gi")):
        spec = by_role[role]
        (volume,) = spec["volumes"]
        assert volume["emptyDir"] == {"medium": "Memory", "sizeLimit": size}
        mounts = spec["containers"][0]["volumeMounts"]
        assert {"name": volume["name"], "mountPath": "/dev/shm"} in mounts


def test_lifecycle_settings():
    spec = render_rayjob(default_cfg())["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] == 300
    assert spec["activeDeadlineSeconds"] == 6 * 3600
    assert spec["submissionMode"] == "K8sJobMode"
    assert spec["rayClusterSpec"]["rayVersion"] == "2.60.0"
    cpu_spec = render_rayjob(cpu_cfg())["spec"]
    assert "activeDeadlineSeconds" not in cpu_spec and cpu_spec["ttlSecondsAfterFinished"] == 0


def test_entrypoint_is_the_shlex_joined_argv():
    entrypoint = render_rayjob(default_cfg())["spec"]["entrypoint"]
    assert entrypoint == shlex.join(ARGV)
    assert shlex.split(entrypoint) == ARGV  # the quoted path survives the shell


def test_every_pod_and_container_is_non_root():
    for role, spec in pods(render_rayjob(gpu_cfg())).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 1000, role
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, role
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, role
            assert sc["allowPrivilegeEscalation"] is False, role
            assert sc["capabilities"] == {"drop": ["ALL"]}, role
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, role
        assert spec.get("serviceAccountName") == "pipeline-runner", role


def test_env_labels_and_image_on_the_ray_pods():
    manifest = render_rayjob(gpu_cfg())
    assert manifest["metadata"] == {
        "name": "train-sasrec",
        "namespace": "kubeflow-alice",
        "labels": {"app.kubernetes.io/part-of": "augrec", "team": "recsys"},
    }
    by_role = pods(manifest)
    for role in ("head", "worker"):
        container = by_role[role]["containers"][0]
        assert container["image"] == "ghcr.io/acme/augrec:0.1.0"
        assert {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"} in container["env"]
        assert container["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    head_ports = {p["name"]: p["containerPort"] for p in by_role["head"]["containers"][0]["ports"]}
    assert head_ports["dashboard"] == 8265 and head_ports["gcs-server"] == 6379
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert (group["replicas"], group["minReplicas"], group["maxReplicas"]) == (2, 1, 4)
    assert group["template"]["metadata"]["labels"]["team"] == "recsys"


def test_render_is_pure():
    cfg = gpu_cfg()
    before = cfg.model_dump()
    first = render_rayjob(cfg)
    pods(first)["worker"]["affinity"]["nodeAffinity"].clear()
    pods(first)["worker"]["nodeSelector"]["x"] = "y"
    assert render_rayjob(cfg) == render_rayjob(gpu_cfg())
    assert cfg.model_dump() == before
