"""Deploy = a rollout, against the Kubernetes API emulator (kmock).

kmock stores Deployments but runs no controller and does not bump `metadata.generation`, so
`FakeDeploymentController` plays both parts: once the pod template carries the new
`augrec.io/model-version`, it bumps the generation and patches `status` step by step.
"""

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from augrec.k8s.rollout import ANNOTATION, RolloutFailed, RolloutTimeout, rollout, rollout_state

sys.path.append(str(Path(__file__).parents[1] / "registry"))
from registry_helpers import train_run  # noqa: E402

NS, NAME = "augrec", "augrec-serving"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path]:
    from augrec.data.synthetic import SyntheticConfig, generate

    root = tmp_path_factory.mktemp("rollout")
    data = root / "shop"
    data.mkdir()
    interactions, items = generate(SyntheticConfig(users=200, items=80, seed=5))
    interactions.to_parquet(data / "interactions.parquet", index=False)
    items.to_parquet(data / "items.parquet", index=False)
    return (
        train_run(data, root / "popularity", "popularity"),
        train_run(data, root / "itemknn", "itemknn", {"neighbors": 20}),
    )


@pytest.fixture
def registry(two_runs, tmp_path, monkeypatch):
    """A registry where `production` is the popularity version; itemknn is the candidate."""
    from augrec.registry.store import open_registry

    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "true")
    reg = open_registry(str(tmp_path / "bentoml"))
    old, _ = reg.register(two_runs[0])
    new, _ = reg.register(two_runs[1])
    reg.promote(old.tag)
    reg.tags = (old.tag, new.tag)  # for the test's eyes only
    return reg


def deployment(annotation: str | None) -> dict[str, Any]:
    annotations = {ANNOTATION: annotation} if annotation else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NS, "generation": 1},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}, "annotations": annotations},
                "spec": {"containers": [{"name": "serve", "image": "augrec:test"}]},
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
        },
    }


class FakeDeploymentController:
    """Waits for the annotation to become `tag`, then bumps the generation and walks `steps`."""

    def __init__(self, emulator, tag: str, steps: list[dict[str, Any]], limit_s: float = 20):
        self.api_client = emulator.api_client()
        self.tag, self.steps, self.limit_s = tag, steps, limit_s
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from kubernetes import client

        try:
            apps = client.AppsV1Api(self.api_client)
            deadline = time.monotonic() + self.limit_s
            while True:
                obj = apps.read_namespaced_deployment(NAME, NS, _request_timeout=5)
                if (obj.spec.template.metadata.annotations or {}).get(ANNOTATION) == self.tag:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("the annotation never changed")
                time.sleep(0.01)
            # what the API server does on a template change
            apps.patch_namespaced_deployment(
                NAME, NS, {"metadata": {"generation": 2}}, _request_timeout=5
            )
            for status in self.steps:
                time.sleep(0.05)
                apps.patch_namespaced_deployment_status(
                    NAME, NS, {"status": status}, _request_timeout=5
                )
        except BaseException as exc:
            self.error = exc

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._thread.join(self.limit_s)
        self.api_client.close()


def create(emulator, annotation: str) -> Any:
    from kubernetes import client

    api = emulator.api_client()
    client.AppsV1Api(api).create_namespaced_deployment(NS, deployment(annotation))
    return api


def annotation_now(api) -> str | None:
    from kubernetes import client

    obj = client.AppsV1Api(api).read_namespaced_deployment(NAME, NS)
    return (obj.spec.template.metadata.annotations or {}).get(ANNOTATION)


ROLLING = [
    {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2},
    {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2},
]
DONE = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}


def test_a_rollout_moves_the_alias_and_waits_for_the_new_replicaset(emulator, registry):
    old, new = registry.tags
    api = create(emulator, old)
    lines: list[str] = []
    with FakeDeploymentController(emulator, new, [*ROLLING, DONE]) as ctrl:
        result = rollout(
            registry, new, NAME, NS, api_client=api, timeout_s=20, poll_s=0.02, log=lines.append
        )
    assert ctrl.error is None, ctrl.error
    assert result.version == new and result.previous == old
    assert registry.aliases.get("production") == new
    assert annotation_now(api) == new
    assert any("1/2 updated" in line for line in lines)  # it waited through the rollout
    assert any("old replicas terminating" in line for line in lines)
    api.close()


def test_a_failed_rollout_restores_the_previous_alias_and_annotation(emulator, registry):
    old, new = registry.tags
    api = create(emulator, old)
    failed = {
        "observedGeneration": 2,
        "replicas": 3,
        "updatedReplicas": 1,
        "availableReplicas": 2,
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "augrec-serving-7d9" has timed out progressing.',
            }
        ],
    }
    lines: list[str] = []
    with FakeDeploymentController(emulator, new, [ROLLING[0], failed]) as ctrl:
        with pytest.raises(RolloutFailed, match="ProgressDeadlineExceeded") as info:
            rollout(
                registry, new, NAME, NS, api_client=api, timeout_s=20, poll_s=0.02, log=lines.append
            )
    assert ctrl.error is None, ctrl.error
    assert info.value.restored == old and f"alias production is back on {old}" in str(info.value)
    assert registry.aliases.get("production") == old
    assert annotation_now(api) == old
    history = registry.aliases.read()["aliases"]["production"]["history"]
    assert [e["action"] for e in history[-2:]] == ["promote", "rollback"]
    api.close()


def test_a_rollout_that_never_becomes_available_times_out_and_is_undone(emulator, registry):
    old, new = registry.tags
    api = create(emulator, old)
    with FakeDeploymentController(emulator, new, [ROLLING[0]]) as ctrl:
        with pytest.raises(RolloutTimeout, match="not available within 1 s"):
            rollout(registry, new, NAME, NS, api_client=api, timeout_s=1, poll_s=0.05, log=print)
    assert ctrl.error is None, ctrl.error
    assert registry.aliases.get("production") == old and annotation_now(api) == old
    api.close()


def test_a_missing_deployment_moves_nothing(emulator, registry):
    old, new = registry.tags
    api = emulator.api_client()
    with pytest.raises(RolloutFailed, match="cannot read it"):
        rollout(registry, new, NAME, NS, api_client=api, timeout_s=1, log=print)
    assert registry.aliases.get("production") == old
    api.close()


@pytest.mark.parametrize(
    ("status", "generation", "state"),
    [
        (
            {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2},
            2,
            "waiting",
        ),
        (DONE, 2, "done"),
        ({**DONE, "availableReplicas": 1}, 2, "waiting"),
        ({**DONE, "replicas": 3}, 2, "waiting"),
    ],
)
def test_rollout_state_reads_a_deployment_like_kubectl(status, generation, state):
    obj = {"metadata": {"generation": 1}, "spec": {"replicas": 2}, "status": status}
    assert rollout_state(obj, generation)[0] == state
