"""The feature-version contract between a trained model and the feature store.

A model records, per FeatureService it consumed, the service's name, a fingerprint of its
definitions and the definitions themselves (`features.json` in the run directory). Before
serving, `augrec features check` recomputes them from the store: a different fingerprint
under the same service name means someone changed what the model reads without publishing
a new service version, and the check names each change.

The fingerprint covers what changes a feature's meaning: view and feature names, feature
types, entities and join keys, TTL, the timestamp field, the push source and the views' tags
(where the repo records e.g. the history window). It leaves out descriptions, owners and
file paths, which differ between environments without changing a value.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from augrec.errors import ConfigError
from augrec.io import write_json
from augrec.rundir import FEATURES as CONTRACT_FILE

if TYPE_CHECKING:
    from feast import FeatureStore

FORMAT = "augrec.features/1"


class Definitions(Protocol):
    """Where definitions come from: the store's registry or the repo's Python files."""

    def get_feature_service(self, name: str) -> Any: ...  # noqa: D102

    def get_feature_view(self, name: str) -> Any: ...  # noqa: D102

    def get_entity(self, name: str) -> Any: ...  # noqa: D102


class RepoDefinitions:
    """Definitions parsed from the repo's files (what `apply` would register)."""

    def __init__(self, contents: Any):
        self._services = {s.name: s for s in contents.feature_services}
        self._views = {v.name: v for v in contents.feature_views}
        self._entities = {e.name: e for e in contents.entities}

    def get_feature_service(self, name: str) -> Any:  # noqa: D102
        return self._lookup(self._services, "feature service", name)

    def get_feature_view(self, name: str) -> Any:  # noqa: D102
        return self._lookup(self._views, "feature view", name)

    def get_entity(self, name: str) -> Any:  # noqa: D102
        return self._lookup(self._entities, "entity", name)

    @staticmethod
    def _lookup(objs: dict[str, Any], kind: str, name: str) -> Any:
        if name not in objs:
            raise KeyError(f"{kind} {name!r} is not defined in the repo")
        return objs[name]


def describe_service(defs: Definitions, name: str) -> dict[str, Any]:
    """The canonical, JSON-ready definition of one FeatureService."""
    service = defs.get_feature_service(name)
    views = []
    for projection in service.feature_view_projections:
        view = defs.get_feature_view(projection.name)
        entities = [defs.get_entity(e) for e in view.entities]
        stream = getattr(view, "stream_source", None)
        views.append(
            {
                "name": projection.name_to_use(),
                "entities": sorted(
                    (
                        {"name": e.name, "join_key": e.join_key, "value_type": e.value_type.name}
                        for e in entities
                    ),
                    key=lambda e: e["name"],
                ),
                "features": {f.name: str(f.dtype) for f in projection.features},
                "ttl_seconds": int(view.ttl.total_seconds()) if view.ttl else 0,
                "timestamp_field": view.batch_source.timestamp_field if view.batch_source else None,
                "push_source": stream.name if stream is not None else None,
                "tags": dict(sorted(view.tags.items())),
            }
        )
    return {"service": service.name, "views": sorted(views, key=lambda v: v["name"])}


def fingerprint(definition: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a service definition."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def registry_definitions(store: FeatureStore) -> Definitions:
    """The applied definitions, read through the store's registry."""
    return store


def repo_definitions(store: FeatureStore) -> Definitions:
    """The definitions in the store's repo files, without applying them."""
    from augrec.features.store import load_definitions

    return RepoDefinitions(load_definitions(store))


def record(defs: Definitions, services: list[str], project: str = "") -> dict[str, Any]:
    """The contract document for a model that consumes `services`."""
    entries = []
    for name in services:
        try:
            definition = describe_service(defs, name)
        except Exception as exc:  # Feast raises its own not-found errors
            raise ConfigError(f"--service: {name!r} is not in the feature store: {exc}") from exc
        entries.append(
            {"name": name, "fingerprint": fingerprint(definition), "definition": definition}
        )
    return {
        "format": FORMAT,
        "project": project,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "services": entries,
    }


def contract_path(path: str | Path) -> Path:
    """A run directory means its `features.json`; any other path is the JSON file itself."""
    path = Path(path)
    return path / CONTRACT_FILE if path.is_dir() else path


def write(contract: dict[str, Any], path: str | Path) -> Path:
    """Write the contract (into a run directory, or to a JSON path), atomically."""
    out = contract_path(path)
    write_json(out, contract)
    return out


def read(path: str | Path) -> dict[str, Any]:
    """Load a contract from a run directory or a JSON file, with a clear error if absent."""
    src = contract_path(path)
    if not src.exists():
        raise ConfigError(
            f"--model: no feature contract at {src} (record one with `augrec features record`)"
        )
    try:
        doc = json.loads(src.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--model: {src} is not valid JSON: {exc}") from exc
    if doc.get("format") != FORMAT or not isinstance(doc.get("services"), list):
        raise ConfigError(f"--model: {src} is not a feature contract (format {FORMAT})")
    return doc


def check(defs: Definitions, contract: dict[str, Any]) -> list[str]:
    """Every difference between the contract and the definitions (empty: the model fits)."""
    problems = []
    for entry in contract["services"]:
        name = entry["name"]
        try:
            now = describe_service(defs, name)
        except Exception:
            problems.append(f"feature service {name!r} no longer exists in the store")
            continue
        if fingerprint(now) == entry["fingerprint"]:
            continue
        changes = diff(entry["definition"], now)
        head = (
            f"feature service {name!r} changed without a new version "
            f"(fingerprint {entry['fingerprint'][:12]} -> {fingerprint(now)[:12]})"
        )
        problems.append("\n  ".join([head, *changes]))
    return problems


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable changes between two service definitions."""
    changes: list[str] = []
    old_views = {v["name"]: v for v in old["views"]}
    new_views = {v["name"]: v for v in new["views"]}
    for name in sorted(old_views.keys() - new_views.keys()):
        changes.append(f"view {name}: removed from the service")
    for name in sorted(new_views.keys() - old_views.keys()):
        changes.append(f"view {name}: added to the service")
    for name in sorted(old_views.keys() & new_views.keys()):
        a, b = old_views[name], new_views[name]
        for f in sorted(a["features"].keys() - b["features"].keys()):
            changes.append(f"view {name}: feature {f} removed")
        for f in sorted(b["features"].keys() - a["features"].keys()):
            changes.append(f"view {name}: feature {f} added ({b['features'][f]})")
        for f in sorted(a["features"].keys() & b["features"].keys()):
            if a["features"][f] != b["features"][f]:
                changes.append(
                    f"view {name}: feature {f} type {a['features'][f]} -> {b['features'][f]}"
                )
        for key in ("entities", "ttl_seconds", "timestamp_field", "push_source"):
            if a.get(key) != b.get(key):
                changes.append(f"view {name}: {key} {a.get(key)} -> {b.get(key)}")
        ta, tb = a.get("tags", {}), b.get("tags", {})
        for tag in sorted(ta.keys() | tb.keys()):
            if ta.get(tag) != tb.get(tag):
                changes.append(f"view {name}: tag {tag} {ta.get(tag)!r} -> {tb.get(tag)!r}")
    return changes or ["definitions differ (no field-level change found)"]
