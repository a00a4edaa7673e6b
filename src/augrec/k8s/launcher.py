"""Submit a RayJob, follow KubeRay's status until the job ends, and always clean up.

`run_rayjob` is what a kfp component calls on a cluster: it creates the RayJob rendered by
`rayjob.render_rayjob`, polls `status.jobDeploymentStatus` / `status.jobStatus`, writes each
change (and KubeRay's message, dashboard URL and cluster name) to `log`, and deletes the RayJob
in a `finally` (success, failure, timeout, Ctrl-C or SIGTERM), so a pipeline step never leaves a
Ray cluster holding GPUs behind. Deleting the RayJob lets Kubernetes garbage-collect its
RayCluster, pods and submitter Job through their owner references.

A RayJob that already exists under the same name is an error (`RayJobExists`), never reused or
deleted: it may be someone else's run. Callers that retry use `rayjob.unique_name`.

Polling rather than a watch: one GET every `poll_s` seconds is cheap, survives API-server
restarts and proxies that cut long-lived connections, and KubeRay's statuses change on the
scale of seconds to minutes anyway.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from augrec.errors import AugrecError
from augrec.k8s.rayjob import GROUP, PLURAL, VERSION, RayJobConfig, render_rayjob

# KubeRay's JobStatus (Ray's own job states) and JobDeploymentStatus values that end a run.
SUCCEEDED = "SUCCEEDED"
FAILED_JOB_STATUSES = frozenset({"FAILED", "STOPPED"})
FAILED_DEPLOYMENT_STATUSES = frozenset({"Failed", "ValidationFailed"})
# With a backoffLimit KubeRay retries a failed job on a fresh cluster: not an end yet.
RETRYING = "Retrying"
# Consecutive failed GETs (API server restarting, a dropped connection) tolerated while polling.
MAX_POLL_ERRORS = 5
# Every API call is bounded: a hung connection must not outlive the job's own timeout.
_TIMEOUT = {"_request_timeout": 30}


class RayJobError(AugrecError):
    """A RayJob did not succeed; carries where it ran and KubeRay's last status."""

    def __init__(self, message: str, name: str, namespace: str, status: dict[str, Any] | None):
        super().__init__(message)
        self.name = name
        self.namespace = namespace
        self.status = dict(status or {})


class RayJobFailed(RayJobError):
    """KubeRay reported the job failed or stopped; `message` is KubeRay's `status.message`."""

    def __init__(self, name: str, namespace: str, status: dict[str, Any]):
        self.message = status.get("message")
        self.reason = status.get("reason")
        text = (
            f"RayJob {namespace}/{name} failed (jobStatus={status.get('jobStatus')}, "
            f"jobDeploymentStatus={status.get('jobDeploymentStatus')}"
            + (f", reason={self.reason}" if self.reason else "")
            + f"): {self.message or 'KubeRay gave no message'}"
        )
        super().__init__(text, name, namespace, status)


class RayJobTimeout(RayJobError):
    """The job did not end within `timeout_s`."""


class RayJobExists(RayJobError):
    """A RayJob of this name already exists in the namespace; it was left untouched."""


class RayJobCancelled(KeyboardInterrupt):
    """SIGTERM arrived while waiting (a cancelled kfp run); raised after cleanup.

    A `KeyboardInterrupt` so that code which already treats Ctrl-C as "stop now" does the same.
    """


@dataclass(frozen=True)
class RayJobResult:
    """A RayJob that succeeded, as KubeRay last described it."""

    name: str
    namespace: str
    job_id: str | None
    ray_cluster_name: str | None
    dashboard_url: str | None
    message: str | None
    elapsed_s: float
    status: dict[str, Any] = field(default_factory=dict)


def _load_api_client() -> Any:
    """In a pod, the service account's in-cluster config; elsewhere, the local kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        # Read $KUBECONFIG now: the client reads it once, when it is first imported.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return client.ApiClient()


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `RayJobCancelled` while inside, so `finally` blocks run.

    Kubernetes stops a pod (a cancelled pipeline run) with SIGTERM, whose default action kills
    Python without unwinding. Signal handlers can only be set from the main thread; elsewhere
    this does nothing and the caller's own handling applies.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise RayJobCancelled(f"signal {signum} received")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _describe(status: dict[str, Any]) -> str:
    return (
        f"jobDeploymentStatus={status.get('jobDeploymentStatus') or '-'} "
        f"jobStatus={status.get('jobStatus') or '-'}"
    )


def _log_changes(
    log: Callable[[str], None], where: str, old: dict[str, Any], new: dict[str, Any]
) -> None:
    """Write what changed between two statuses: the state pair, then the details."""
    keys = ("jobDeploymentStatus", "jobStatus")
    if any(old.get(k) != new.get(k) for k in keys):
        log(f"RayJob {where}: {_describe(new)}")
    for key in ("rayClusterName", "dashboardURL", "jobId", "reason", "message"):
        if new.get(key) and new.get(key) != old.get(key):
            log(f"RayJob {where}: {key}: {new[key]}")


def _is_success(status: dict[str, Any]) -> bool:
    return status.get("jobStatus") == SUCCEEDED


def _is_failure(status: dict[str, Any]) -> bool:
    deployment = status.get("jobDeploymentStatus")
    if deployment in FAILED_DEPLOYMENT_STATUSES:
        return True
    return status.get("jobStatus") in FAILED_JOB_STATUSES and deployment != RETRYING


def run_rayjob(
    cfg: RayJobConfig,
    api_client: Any = None,
    *,
    timeout_s: float | None = None,
    poll_s: float = 5.0,
    log: Callable[[str], None] = print,
    keep_on_failure: bool = False,
    delete_wait_s: float = 30.0,
) -> RayJobResult:
    """Create the RayJob for `cfg`, wait until it ends, delete it, and report how it went.

    Args:
        cfg: the job; rendered with `render_rayjob`.
        api_client: a `kubernetes.client.ApiClient`; None loads the in-cluster config (in a
            pod) or else the local kubeconfig.
        timeout_s: how long to wait for the end. None = the config's `active_deadline_seconds`
            plus two minutes, so KubeRay's own DeadlineExceeded failure (with its message)
            normally arrives first; six hours when the config sets no deadline.
        poll_s: seconds between status reads.
        log: receives one line per status change (stdout by default; a kfp component's
            stdout is its log).
        keep_on_failure: leave a failed or timed-out RayJob (and so its Ray cluster) in place
            for debugging. Success and cancellation always delete it.
        delete_wait_s: after deleting, how long to wait for the object to disappear (it can
            linger while KubeRay's finalizer stops the job); past that, log and move on.

    Returns:
        KubeRay's description of the succeeded job.

    Raises:
        RayJobExists: a RayJob of that name is already there (it is not touched).
        RayJobFailed: KubeRay reported FAILED or STOPPED; carries `status.message`.
        RayJobTimeout: no end within `timeout_s`.
        RayJobCancelled: SIGTERM arrived (re-raised after cleanup); Ctrl-C re-raises
            `KeyboardInterrupt` likewise.
    """
    from kubernetes import client

    if timeout_s is None:
        deadline = cfg.active_deadline_seconds
        timeout_s = 6 * 3600.0 if deadline is None else deadline + 120.0
    owns_client = api_client is None
    if owns_client:
        api_client = _load_api_client()
    api = client.CustomObjectsApi(api_client)
    name, namespace = cfg.name, cfg.namespace
    where = f"{namespace}/{name}"
    started = time.monotonic()
    created = False
    succeeded = False
    cancelled = False
    try:
        with _sigterm_raises():
            try:
                api.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, render_rayjob(cfg), **_TIMEOUT
                )
            except client.ApiException as exc:
                if exc.status == 409:
                    raise RayJobExists(
                        f"RayJob {where} already exists; pick another name (e.g. with "
                        "augrec.k8s.unique_name) or delete it first",
                        name,
                        namespace,
                        None,
                    ) from exc
                raise
            created = True
            log(f"RayJob {where}: created; entrypoint: {cfg.entrypoint_command}")
            status = _wait(api, cfg, log, where, started, timeout_s, poll_s)
            succeeded = True
            return RayJobResult(
                name=name,
                namespace=namespace,
                job_id=status.get("jobId"),
                ray_cluster_name=status.get("rayClusterName"),
                dashboard_url=status.get("dashboardURL"),
                message=status.get("message"),
                elapsed_s=round(time.monotonic() - started, 3),
                status=status,
            )
    except KeyboardInterrupt:
        cancelled = True
        log(f"RayJob {where}: interrupted; cleaning up")
        raise
    finally:
        try:
            if created and (succeeded or cancelled or not keep_on_failure):
                _delete(api, client, name, namespace, where, log, delete_wait_s)
            elif created:
                log(f"RayJob {where}: kept for debugging (keep_on_failure=True)")
        finally:
            if owns_client:
                api_client.close()


def _wait(
    api: Any,
    cfg: RayJobConfig,
    log: Callable[[str], None],
    where: str,
    started: float,
    timeout_s: float,
    poll_s: float,
) -> dict[str, Any]:
    """Poll until the job ends; return the final status or raise."""
    import urllib3
    from kubernetes import client

    last: dict[str, Any] = {}
    errors = 0
    while True:
        try:
            obj = api.get_namespaced_custom_object(
                GROUP, VERSION, cfg.namespace, PLURAL, cfg.name, **_TIMEOUT
            )
            errors = 0
        except client.ApiException as exc:
            if exc.status == 404:
                raise RayJobError(
                    f"RayJob {where} disappeared while running (deleted by someone else?)",
                    cfg.name,
                    cfg.namespace,
                    last,
                ) from exc
            errors += 1
            transient = exc.status is None or exc.status >= 500 or exc.status == 429
            if errors > MAX_POLL_ERRORS or not transient:
                raise
            log(f"RayJob {where}: status read failed ({exc.status} {exc.reason}); retrying")
            obj = {"status": last}
        except urllib3.exceptions.HTTPError as exc:
            # Connection refused or reset: the API server restarting, a proxy hiccup.
            errors += 1
            if errors > MAX_POLL_ERRORS:
                raise
            log(f"RayJob {where}: status read failed ({exc}); retrying")
            obj = {"status": last}
        status = dict(obj.get("status") or {})
        _log_changes(log, where, last, status)
        last = status
        if _is_success(status):
            return status
        if _is_failure(status):
            raise RayJobFailed(cfg.name, cfg.namespace, status)
        elapsed = time.monotonic() - started
        if elapsed >= timeout_s:
            raise RayJobTimeout(
                f"RayJob {where} did not finish within {timeout_s:g} s (last: {_describe(status)})",
                cfg.name,
                cfg.namespace,
                status,
            )
        time.sleep(min(poll_s, max(timeout_s - elapsed, 0.0)))


def _delete(
    api: Any,
    client: Any,
    name: str,
    namespace: str,
    where: str,
    log: Callable[[str], None],
    wait_s: float,
) -> None:
    """Delete the RayJob (Background propagation) and wait, bounded, until it is gone.

    Never raises: it runs in a `finally`, where an error would hide the job's own outcome.
    A RayJob it could not delete is logged with the command that deletes it.
    """
    by_hand = f"delete it by hand: kubectl delete rayjob -n {namespace} {name}"
    try:
        api.delete_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            body=client.V1DeleteOptions(propagation_policy="Background"),
            **_TIMEOUT,
        )
        deadline = time.monotonic() + wait_s
        while True:
            try:
                api.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, **_TIMEOUT
                )
            except client.ApiException as exc:
                if exc.status == 404:
                    log(f"RayJob {where}: deleted")
                    return
                raise
            if time.monotonic() >= deadline:
                log(f"RayJob {where}: deletion requested; still present after {wait_s:g} s")
                return
            time.sleep(min(0.5, wait_s))
    except client.ApiException as exc:
        if exc.status == 404:
            log(f"RayJob {where}: already gone")
        else:
            log(f"RayJob {where}: delete failed ({exc.status} {exc.reason}); {by_hand}")
    except Exception as exc:  # cleanup must not mask the job's outcome
        log(f"RayJob {where}: delete failed ({exc!r}); {by_hand}")
