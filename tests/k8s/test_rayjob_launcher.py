"""run_rayjob against kmock's Kubernetes API emulator, with the test playing KubeRay.

Every run is bounded (`timeout_s` of seconds, API calls time out after 30 s, the fake
controller gives up after 10 s) and every case checks that the RayJob is gone afterwards.
"""

from __future__ import annotations

import _thread
import os
import signal
import time

import pytest
from k8s_helpers import FakeKubeRay, custom_objects, get_rayjob

from augrec.k8s import (
    RayJobCancelled,
    RayJobConfig,
    RayJobExists,
    RayJobFailed,
    RayJobTimeout,
    render_rayjob,
    run_rayjob,
)

NS = "kubeflow-alice"
FAST = {"poll_s": 0.02, "delete_wait_s": 2.0}

RUNNING = [
    {"jobDeploymentStatus": "Initializing"},
    {
        "jobDeploymentStatus": "Running",
        "jobStatus": "PENDING",
        "rayClusterName": "train-x-raycluster-abcde",
        "dashboardURL": "train-x-raycluster-abcde-head-svc.kubeflow-alice.svc:8265",
        "jobId": "train-x-7k2mq",
    },
    {"jobStatus": "RUNNING"},
]


def cfg(name: str = "train-x") -> RayJobConfig:
    return RayJobConfig(
        name=name,
        namespace=NS,
        image="ghcr.io/acme/augrec:0.1.0",
        entrypoint=["augrec", "train", "--data", "s3://b/d.parquet", "--ray-address", "auto"],
    )


class Log(list):
    def __call__(self, line: str) -> None:
        self.append(line)

    def text(self) -> str:
        return "\n".join(self)


def test_success_streams_statuses_returns_result_and_deletes(emulator):
    log = Log()
    steps = [
        *RUNNING,
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED", "message": "done"},
    ]
    api_client = emulator.api_client()
    with FakeKubeRay(emulator, NS, "train-x", steps) as kuberay:
        result = run_rayjob(cfg(), api_client, timeout_s=10, log=log, **FAST)
    assert kuberay.error is None
    # What KubeRay saw is exactly the rendered manifest.
    assert kuberay.seen_spec["spec"] == render_rayjob(cfg())["spec"]
    assert result.name == "train-x" and result.namespace == NS
    assert result.job_id == "train-x-7k2mq"
    assert result.ray_cluster_name == "train-x-raycluster-abcde"
    assert result.dashboard_url.endswith(":8265")
    assert result.message == "done" and result.status["jobStatus"] == "SUCCEEDED"
    text = log.text()
    for expected in (
        "created; entrypoint: augrec train --data s3://b/d.parquet --ray-address auto",
        "jobDeploymentStatus=Initializing jobStatus=-",
        "jobDeploymentStatus=Running jobStatus=PENDING",
        "jobDeploymentStatus=Running jobStatus=RUNNING",
        "jobDeploymentStatus=Complete jobStatus=SUCCEEDED",
        "rayClusterName: train-x-raycluster-abcde",
        "dashboardURL: train-x-raycluster-abcde-head-svc",
        "message: done",
        "deleted",
    ):
        assert expected in text, expected
    # Each state pair is logged once, however many polls saw it.
    assert sum("jobStatus=RUNNING" in line for line in log) == 1
    assert get_rayjob(api_client, NS, "train-x") is None
    api_client.close()


def test_failure_raises_with_kuberays_message_and_deletes(emulator):
    log = Log()
    message = "Job entrypoint command failed with exit code 1, last available logs: OOM"
    steps = [
        *RUNNING,
        {
            "jobDeploymentStatus": "Failed",
            "jobStatus": "FAILED",
            "reason": "AppFailed",
            "message": message,
        },
    ]
    api_client = emulator.api_client()
    with FakeKubeRay(emulator, NS, "train-x", steps) as kuberay:
        with pytest.raises(RayJobFailed) as info:
            run_rayjob(cfg(), api_client, timeout_s=10, log=log, **FAST)
    assert kuberay.error is None
    assert info.value.message == message and info.value.reason == "AppFailed"
    assert message in str(info.value) and "kubeflow-alice/train-x" in str(info.value)
    assert f"message: {message}" in log.text()
    assert get_rayjob(api_client, NS, "train-x") is None
    api_client.close()


def test_kuberay_deadline_exceeded_is_a_failure(emulator):
    # KubeRay fails the deployment on activeDeadlineSeconds while Ray still says RUNNING.
    steps = [
        *RUNNING,
        {
            "jobDeploymentStatus": "Failed",
            "reason": "DeadlineExceeded",
            "message": "The RayJob has passed the activeDeadlineSeconds.",
        },
    ]
    api_client = emulator.api_client()
    with FakeKubeRay(emulator, NS, "train-x", steps):
        with pytest.raises(RayJobFailed, match="DeadlineExceeded.*activeDeadlineSeconds"):
            run_rayjob(cfg(), api_client, timeout_s=10, log=Log(), **FAST)
    assert get_rayjob(api_client, NS, "train-x") is None
    api_client.close()


def test_keep_on_failure_leaves_the_rayjob(emulator):
    log = Log()
    steps = [{"jobDeploymentStatus": "Failed", "jobStatus": "STOPPED", "message": "stopped"}]
    api_client = emulator.api_client()
    with FakeKubeRay(emulator, NS, "train-x", steps):
        with pytest.raises(RayJobFailed, match="stopped"):
            run_rayjob(cfg(), api_client, timeout_s=10, log=log, keep_on_failure=True, **FAST)
    assert get_rayjob(api_client, NS, "train-x") is not None
    assert "kept for debugging" in log.text()
    api_client.close()


def test_timeout_raises_and_deletes(emulator):
    log = Log()
    api_client = emulator.api_client()
    started = time.monotonic()
    with FakeKubeRay(emulator, NS, "train-x", RUNNING):
        with pytest.raises(RayJobTimeout, match="within 0.6 s.*jobStatus=RUNNING"):
            run_rayjob(cfg(), api_client, timeout_s=0.6, log=log, **FAST)
    assert time.monotonic() - started < 5
    assert get_rayjob(api_client, NS, "train-x") is None
    assert "deleted" in log.text()
    api_client.close()


def test_existing_rayjob_is_an_error_and_left_alone(emulator):
    api_client = emulator.api_client()
    theirs = render_rayjob(cfg())
    theirs["metadata"]["labels"]["owner"] = "someone-else"
    custom_objects(api_client).create_namespaced_custom_object(
        "ray.io", "v1", NS, "rayjobs", theirs, _request_timeout=5
    )
    with pytest.raises(RayJobExists, match="kubeflow-alice/train-x already exists"):
        run_rayjob(cfg(), api_client, timeout_s=5, log=Log(), **FAST)
    kept = get_rayjob(api_client, NS, "train-x")
    assert kept is not None and kept["metadata"]["labels"]["owner"] == "someone-else"
    api_client.close()


def test_keyboard_interrupt_cleans_up_and_reraises(emulator):
    log = Log()
    api_client = emulator.api_client()
    # interrupt_main acts through the process's SIGINT handler, and a test run started in the
    # background by a non-interactive shell (`.ci/run &`) inherits SIGINT ignored, which Python
    # keeps: then nothing is raised. Use Python's own handler for this test.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    fake = FakeKubeRay(emulator, NS, "train-x", RUNNING, after=_thread.interrupt_main)
    try:
        with fake, pytest.raises(KeyboardInterrupt):
            run_rayjob(cfg(), api_client, timeout_s=10, log=log, **FAST)
    finally:
        signal.signal(signal.SIGINT, before)
    assert "interrupted; cleaning up" in log.text()
    assert get_rayjob(api_client, NS, "train-x") is None
    api_client.close()


def test_sigterm_cleans_up_and_raises_cancelled(emulator):
    log = Log()
    before = signal.getsignal(signal.SIGTERM)
    api_client = emulator.api_client()

    def sigterm() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    with FakeKubeRay(emulator, NS, "train-x", RUNNING, after=sigterm):
        with pytest.raises(RayJobCancelled):
            run_rayjob(cfg(), api_client, timeout_s=10, log=log, **FAST)
    assert signal.getsignal(signal.SIGTERM) is before
    assert get_rayjob(api_client, NS, "train-x") is None
    api_client.close()


def test_without_api_client_reads_the_kubeconfig(emulator, tmp_path, monkeypatch):
    from kubernetes import client

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""
apiVersion: v1
kind: Config
clusters: [{{name: emu, cluster: {{server: "{emulator.url}"}}}}]
users: [{{name: me, user: {{token: not-a-secret}}}}]
contexts: [{{name: emu, context: {{cluster: emu, user: me, namespace: {NS}}}}}]
current-context: emu
"""
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    saved = client.Configuration.get_default_copy()
    steps = [{"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}]
    try:
        with FakeKubeRay(emulator, NS, "train-x", steps):
            result = run_rayjob(cfg(), timeout_s=10, log=Log(), **FAST)
    finally:
        client.Configuration.set_default(saved)
    assert result.status["jobStatus"] == "SUCCEEDED"
    api_client = emulator.api_client()
    assert get_rayjob(api_client, NS, "train-x") is None
    api_client.close()
