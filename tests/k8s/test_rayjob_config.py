"""Bad RayJob settings fail at config time, naming the field and the value."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from augrec.config import load_yaml_config
from augrec.errors import ConfigError
from augrec.k8s import RayJobConfig, unique_name

BASE: dict[str, Any] = {
    "name": "train-x",
    "image": "ghcr.io/acme/augrec:0.1.0",
    "entrypoint": ["augrec", "train"],
}


def error_for(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as info:
        RayJobConfig(**{**BASE, **overrides})
    return str(info.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"name": "Train_X"}, ["name", "name='Train_X'", "RFC 1035"]),
        ({"name": "1-train"}, ["name='1-train'", "start with a letter"]),
        ({"name": "t" * 48}, ["name", "at most 47 characters"]),
        ({"name": "train-"}, ["name='train-'"]),
        ({"namespace": "Kubeflow Alice"}, ["namespace", "'Kubeflow Alice'", "RFC 1123"]),
        ({"service_account": "Runner!"}, ["service_account", "'Runner!'"]),
        ({"env_from_secrets": ["S3 creds"]}, ["env_from_secrets", "'S3 creds'"]),
        ({"workers": {"cpu": "two"}}, ["workers.cpu", "cpu='two'", "quantity"]),
        ({"head": {"memory": "8 GB"}}, ["head.memory", "memory='8 GB'"]),
        ({"workers": {"shm_size": "-1Gi"}}, ["workers.shm_size", "'-1Gi'"]),
        ({"workers": {"gpus": -1}}, ["workers.gpus", "greater than or equal to 0"]),
        ({"workers": {"group_name": "GPU_pool"}}, ["workers.group_name", "'GPU_pool'"]),
        ({"workers": {"gpu_resource": "nvidia gpu"}}, ["workers.gpu_resource", "'nvidia gpu'"]),
        (
            {"workers": {"node_selector": {"bad key!": "x"}}},
            ["workers.node_selector", "'bad key!'"],
        ),
        ({"workers": {"node_selector": {"pool": "a b"}}}, ["node_selector['pool']='a b'"]),
        (
            {"workers": {"replicas": 5, "max_replicas": 2}},
            ["workers", "replicas=5", "max_replicas=2"],
        ),
        (
            {"workers": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}},
            ["workers.tolerations.0", "value='v'", "Exists"],
        ),
        ({"labels": {"team": "rec sys"}}, ["labels", "'rec sys'"]),
        ({"env": {"1BAD": "x"}}, ["env", "'1BAD'"]),
        ({"entrypoint": []}, ["entrypoint", "at least 1 item"]),
        ({"entrypoint": [" ", "train"]}, ["entrypoint", "program"]),
        ({"image": "my image"}, ["image", "'my image'"]),
        ({"ray_version": "latest"}, ["ray_version", "'latest'"]),
        ({"image_pull_policy": "Sometimes"}, ["image_pull_policy", "'Sometimes'"]),
        ({"active_deadline_seconds": 0}, ["active_deadline_seconds", "greater than 0"]),
        ({"ttl_seconds_after_finished": -1}, ["ttl_seconds_after_finished"]),
        (
            {"shutdown_after_job_finishes": False},
            ["ttl_seconds_after_finished=300", "shutdown_after_job_finishes=True"],
        ),
        (
            {"workers": {"replicas": 0}},
            ["head.num_cpus=0", "workers.max_replicas=0"],
        ),
        ({"nmae": "typo"}, ["nmae", "Extra inputs are not permitted"]),
        ({"workers": {"gpu": 1}}, ["workers.gpu", "Extra inputs are not permitted"]),
    ],
)
def test_bad_values_name_the_field(overrides, expected):
    message = error_for(**overrides)
    for part in expected:
        assert part in message, (part, message)


def test_valid_edge_cases_pass():
    RayJobConfig(**{**BASE, "name": "t" * 47})
    RayJobConfig(**BASE, ttl_seconds_after_finished=0, shutdown_after_job_finishes=False)
    RayJobConfig(**BASE, head={"num_cpus": None}, workers={"replicas": 0})
    RayJobConfig(**BASE, workers={"replicas": 0, "max_replicas": 3, "cpu": "500m"})


def test_yaml_errors_name_the_field(tmp_path):
    path = tmp_path / "rayjob.yaml"
    path.write_text(
        "name: train-x\nimage: img:1\nentrypoint: [augrec, train]\nworkers:\n  gpus: two\n"
    )
    with pytest.raises(ConfigError, match=r"field 'workers.gpus'.*got 'two'"):
        load_yaml_config(path, RayJobConfig)
    path.write_text(
        "name: train-x\nimage: img:1\nentrypoint: [augrec, train]\nworkers: {gpus: 1}\n"
    )
    assert load_yaml_config(path, RayJobConfig).workers.gpus == 1


def test_unique_name_fits_and_differs():
    names = {unique_name("augment-generator-epoch4-seed0-" + "x" * 40) for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert len(name) <= 47 and RayJobConfig(**{**BASE, "name": name}).name == name
    with pytest.raises(ValueError, match="name="):
        unique_name("9lives")
