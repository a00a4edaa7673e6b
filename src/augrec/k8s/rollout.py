"""Deploy = a rollout: move the alias, roll the serving Deployment, roll back if it fails.

`rollout` is what the pipeline's deploy step calls on a cluster:

1. read the serving Deployment (a missing one fails here, before anything moved);
2. point the alias (default `production`) at the version, through the registry's `promote`
   (atomic, integrity-checked; see `augrec.registry`);
3. patch the pod template's annotation `augrec.io/model-version: <tag>`: a new pod template,
   so Kubernetes starts a new ReplicaSet whose pods resolve the alias when they start;
4. wait until the rollout is complete, as `kubectl rollout status` judges it:
   `observedGeneration >= generation`, `updatedReplicas == replicas`, `availableReplicas ==
   replicas` (and no old replicas left); the `Progressing` condition with reason
   `ProgressDeadlineExceeded` is a failure, and so is our own `timeout_s`;
5. on failure, point the alias back at the version it replaced (only if nobody moved it
   since) and patch the annotation back (Kubernetes then scales the previous ReplicaSet up
   again), then raise `RolloutFailed` / `RolloutTimeout` saying what was restored.

Importing this module does not import `kubernetes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from augrec.errors import AugrecError

ANNOTATION = "augrec.io/model-version"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
_TIMEOUT = {"_request_timeout": 30}


class RolloutError(AugrecError):
    """A rollout did not complete; says what was put back."""

    def __init__(
        self,
        message: str,
        deployment: str,
        namespace: str,
        version: str,
        restored: str | None = None,
        status: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.deployment = deployment
        self.namespace = namespace
        self.version = version
        self.restored = restored  # the tag the alias points at again (None: not moved back)
        self.status = dict(status or {})


class RolloutFailed(RolloutError):
    """Kubernetes reported the rollout failed (ProgressDeadlineExceeded), or an API error."""


class RolloutTimeout(RolloutError):
    """The rollout did not complete within `timeout_s`."""


@dataclass(frozen=True)
class RolloutResult:
    """A completed rollout."""

    deployment: str
    namespace: str
    alias: str
    version: str
    previous: str | None  # what the alias pointed at before (None: unset, or already there)
    elapsed_s: float
    status: dict[str, Any] = field(default_factory=dict)


def rollout_state(deployment: dict[str, Any], min_generation: int = 0) -> tuple[str, str]:
    """Judge a Deployment (as a dict) the way `kubectl rollout status` does.

    `min_generation`: the generation our patch made (at least); the controller must have
    observed it before the replica counts mean anything.

    Returns ("done" | "waiting" | "failed", a one-line description).
    """
    meta, spec, status = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
    generation = max(int(meta.get("generation") or 0), min_generation)
    observed = int(status.get("observedGeneration") or 0)
    if observed < generation:
        return "waiting", f"waiting for generation {generation} to be observed (at {observed})"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == DEADLINE_EXCEEDED:
            return "failed", f"{DEADLINE_EXCEEDED}: {cond.get('message') or 'no message'}"
    want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    replicas = int(status.get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    line = f"{updated}/{want} updated, {available} available, {replicas} total"
    if updated < want:
        return "waiting", line
    if replicas > updated:
        return "waiting", f"{line} (old replicas terminating)"
    if available < updated:
        return "waiting", line
    return "done", line


def _load_api_client() -> Any:
    from augrec.k8s.launcher import _load_api_client as load

    return load()


def _as_dict(api_client: Any, obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else api_client.sanitize_for_serialization(obj)


def _annotation(deployment: dict[str, Any]) -> str | None:
    template = deployment.get("spec", {}).get("template", {})
    return (template.get("metadata") or {}).get("annotations", {}).get(ANNOTATION)


def _patch(apps: Any, name: str, namespace: str, value: str | None) -> Any:
    """Set (or, with None, remove) the model-version annotation of the pod template."""
    body = {"spec": {"template": {"metadata": {"annotations": {ANNOTATION: value}}}}}
    return apps.patch_namespaced_deployment(name, namespace, body, **_TIMEOUT)


def rollout(
    registry: Any,
    version_tag: str,
    deployment: str,
    namespace: str,
    alias: str = "production",
    api_client: Any = None,
    timeout_s: float = 600.0,
    log: Callable[[str], None] = print,
    *,
    poll_s: float = 2.0,
    note: str = "",
) -> RolloutResult:
    """Move `alias` to `version_tag` and roll `deployment`; undo both if it does not complete.

    Args:
        registry: an augrec registry (`augrec.registry.store.open_registry(home)`; on a
            cluster, one on object storage that the serving pods read too).
        version_tag: the version to serve (anything `registry.get` resolves).
        deployment: the serving Deployment's name.
        namespace: its namespace.
        alias: the alias the serving pods resolve when they start.
        api_client: a `kubernetes.client.ApiClient`; None loads the in-cluster config (in a
            pod) or else the local kubeconfig.
        timeout_s: how long to wait for the new ReplicaSet to become available.
        log: receives one line per state change (a kfp component's stdout is its log).
        poll_s: seconds between reads of the Deployment.
        note: kept in the alias history.

    Returns:
        The completed rollout.

    Raises:
        RolloutFailed: ProgressDeadlineExceeded or an API error; the alias and annotation
            were restored (`restored` names the version the alias points at again).
        RolloutTimeout: not complete within `timeout_s`; restored likewise.
        RegistryError: the version cannot be promoted (nothing was changed).
    """
    from kubernetes import client

    owns_client = api_client is None
    if owns_client:
        api_client = _load_api_client()
    apps = client.AppsV1Api(api_client)
    where = f"{namespace}/{deployment}"
    started = time.monotonic()
    try:
        try:
            before = _as_dict(
                api_client, apps.read_namespaced_deployment(deployment, namespace, **_TIMEOUT)
            )
        except client.ApiException as exc:
            raise RolloutFailed(
                f"Deployment {where}: cannot read it ({exc.status} {exc.reason}); nothing moved",
                deployment,
                namespace,
                version_tag,
            ) from exc
        old_annotation = _annotation(before)
        version, event = registry.promote(
            version_tag, alias, note or f"rollout of Deployment {where}"
        )
        tag = version.tag
        previous = event["from"] if event is not None else None
        log(f"alias {alias}: {previous or '(unset)'} -> {tag}" if event else f"{alias} is {tag}")
        try:
            patched = _as_dict(api_client, _patch(apps, deployment, namespace, tag))
            # A changed template bumps the generation; wait for the controller to see it.
            generation = int((patched.get("metadata") or {}).get("generation") or 0)
            if old_annotation != tag:
                generation = max(generation, int(before["metadata"].get("generation") or 0) + 1)
            log(f"Deployment {where}: {ANNOTATION}={tag} (generation {generation})")
            status = _wait(
                apps, api_client, deployment, namespace, tag, generation, timeout_s, poll_s, log
            )
        except (RolloutError, client.ApiException) as exc:
            restored = _undo(
                registry, apps, deployment, namespace, alias, tag, event, old_annotation, log
            )
            what = (
                f"alias {alias} is back on {restored}"
                if restored
                else f"alias {alias} was left as it is"
            )
            if isinstance(exc, RolloutError):
                cls, status, reason = type(exc), exc.status, str(exc)
            else:
                cls, status, reason = RolloutFailed, {}, f"API error {exc.status} {exc.reason}"
            raise cls(
                f"rollout of {tag} to Deployment {where} failed: {reason}; {what}, and the "
                f"pod template annotation was restored",
                deployment,
                namespace,
                tag,
                restored=restored,
                status=status,
            ) from exc
        elapsed = round(time.monotonic() - started, 3)
        log(f"Deployment {where}: rolled out {tag} in {elapsed:g} s")
        return RolloutResult(deployment, namespace, alias, tag, previous, elapsed, status)
    finally:
        if owns_client:
            api_client.close()


def _wait(
    apps: Any,
    api_client: Any,
    name: str,
    namespace: str,
    tag: str,
    generation: int,
    timeout_s: float,
    poll_s: float,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Poll the Deployment until the rollout is done; raise on failure or timeout."""
    where = f"{namespace}/{name}"
    started = time.monotonic()
    last = ""
    while True:
        obj = _as_dict(api_client, apps.read_namespaced_deployment(name, namespace, **_TIMEOUT))
        status = dict(obj.get("status") or {})
        if _annotation(obj) != tag:
            raise RolloutFailed(
                f"the pod template's {ANNOTATION} changed to {_annotation(obj)!r} while "
                "waiting (another rollout?)",
                name,
                namespace,
                tag,
                status=status,
            )
        state, line = rollout_state(obj, generation)
        if line != last:
            log(f"Deployment {where}: {line}")
            last = line
        if state == "done":
            return status
        if state == "failed":
            raise RolloutFailed(line, name, namespace, tag, status=status)
        elapsed = time.monotonic() - started
        if elapsed >= timeout_s:
            raise RolloutTimeout(
                f"not available within {timeout_s:g} s ({line})",
                name,
                namespace,
                tag,
                status=status,
            )
        time.sleep(min(poll_s, max(timeout_s - elapsed, 0.0)))


def _undo(
    registry: Any,
    apps: Any,
    name: str,
    namespace: str,
    alias: str,
    tag: str,
    event: dict[str, Any] | None,
    old_annotation: str | None,
    log: Callable[[str], None],
) -> str | None:
    """Put the alias and the annotation back; returns the tag the alias points at again.

    Never raises: it runs while another error is on its way out. What it could not restore
    is logged with the command that does it by hand.
    """
    where = f"{namespace}/{name}"
    restored = None
    try:
        current = registry.aliases.get(alias)
        if event is None or event.get("from") is None:
            log(f"alias {alias}: nothing to move back to (it was not moved, or was unset)")
        elif current != tag:
            log(f"alias {alias}: now {current}, moved by someone else; left as it is")
        else:
            version, _ = registry.rollback(alias, note=f"rollout of {tag} to {where} failed")
            restored = version.tag
            log(f"alias {alias}: {tag} -> {restored} (rolled back)")
    except Exception as exc:  # report, keep going: the annotation still has to go back
        log(f"alias {alias}: rollback failed ({exc!r}); run `augrec models rollback`")
    try:
        _patch(apps, name, namespace, old_annotation)
        log(f"Deployment {where}: {ANNOTATION} restored to {old_annotation!r}")
    except Exception as exc:
        log(
            f"Deployment {where}: could not restore {ANNOTATION} ({exc!r}); run "
            f"`kubectl rollout undo -n {namespace} deployment/{name}`"
        )
    return restored
