"""Registered model versions on top of the BentoML model store, plus our lineage and aliases.

Layout under the BentoML home (`$BENTOML_HOME`, default `~/bentoml`), so a Bento,
`bentoml models list` and `augrec models list` see the same models:

    models/augrec-<dataset>-<model>/<version>/   one immutable version (BentoML's model dir)
        model.yaml                               BentoML: tag, labels, metadata, created time
        manifest.json metrics.json model.pt config.json [gate.json] [features.json]
    augrec/aliases.json (+ .lock)                production/staging/... with history
    augrec/register.lock                         serialises registrations
    augrec/staging/                              versions being written (see below)

A version is the run directory's files, copied; `rundir.load_model(version.path)` rebuilds the
model exactly as from the run directory. The sha256 of every file is recorded in the
version's metadata at registration and checked before a version is loaded, promoted or
exported, so a partially copied or edited version is refused rather than served.

A version is written whole into `augrec/staging/` (a BentoML store of its own on the same
volume), then renamed into `models/` in one step, and `models/<name>/latest` is replaced
atomically: BentoML's own save copies file by file into `models/` and rewrites `latest` in
place, so a process killed there would leave a listed version with missing files. Leftovers of
a killed registration are removed by the next one.
BentoML is imported lazily: it costs about a second.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augrec import rundir
from augrec.errors import RegistryError
from augrec.io import atomic_write_text, file_lock
from augrec.registry.aliases import AliasBook
from augrec.registry.gate import Champion
from augrec.registry.manifest import FORMAT as MANIFEST_FORMAT
from augrec.registry.manifest import file_sha256

if TYPE_CHECKING:
    import numpy as np

    from augrec.models.base import Recommender
    from augrec.registry.objstore import ObjectRegistry

NAME_PREFIX = "augrec"
MANAGED_BY = ("managed-by", "augrec")  # the label that marks our models in a shared store
HEADLINE = ("ndcg@10", "hr@10", "mrr@10", "ndcg@20", "hr@20", "coverage@10", "tail_share@10")


def default_home() -> Path:
    """The BentoML home, resolved as BentoML resolves it."""
    raw = os.environ.get("BENTOML_HOME") or os.path.join("~", "bentoml")
    return Path(os.path.expandvars(raw)).expanduser()


def model_name(dataset: str, model: str) -> str:
    """`augrec-<dataset>-<model>`, made a valid BentoML name (lowercase, at most 63 chars)."""
    slug = re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-") or "data"
    room = 63 - len(NAME_PREFIX) - len(model) - 2
    return f"{NAME_PREFIX}-{slug[:room].strip('-')}-{model}"


def _no_none(obj: Any) -> Any:
    """BentoML metadata holds no None: drop None values (the files keep the full document)."""
    if isinstance(obj, dict):
        return {k: _no_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_no_none(v) for v in obj if v is not None]
    return obj


def only_match(matches: list[ModelVersion], ref: str, home: Any) -> ModelVersion:
    """The one version `ref` names among `matches`; a clear error for none or several."""
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RegistryError(
            f"{ref!r} matches several versions: {', '.join(v.tag for v in matches)}"
        )
    raise RegistryError(f"no alias, model or version {ref!r} in {home}")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: its tag, where its files are, and what BentoML recorded."""

    tag: str
    path: Path
    created_at: datetime
    labels: dict[str, str]
    metadata: dict[str, Any]

    @property
    def name(self) -> str:
        """The BentoML model name (`augrec-<dataset>-<model>`)."""
        return self.tag.split(":")[0]

    @property
    def version(self) -> str:
        """The version part of the tag."""
        return self.tag.split(":")[1]

    @property
    def location(self) -> str:
        """Where the version's files are kept (a local path here; a URI on object storage)."""
        return str(self.path)

    def _read_json(self, name: str) -> dict[str, Any] | None:
        return rundir.read_json(self.path, name)

    def fetch(self) -> Path:
        """A local directory holding the version's files (here: where they already are)."""
        return self.path

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The run manifest (lineage)."""
        return self._read_json(rundir.MANIFEST) or {}

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """The run's metrics.json."""
        return self._read_json(rundir.METRICS) or {}

    @cached_property
    def gate(self) -> dict[str, Any] | None:
        """The gate verdict the run carried when registered, if any."""
        return self._read_json(rundir.GATE)

    @cached_property
    def features(self) -> dict[str, Any] | None:
        """The Feast feature contract (features.json), if the run recorded one."""
        return self._read_json(rundir.FEATURES)

    def verify(self) -> list[str]:
        """Integrity problems: files missing or changed since registration (empty = intact)."""
        return check_files(self.fetch(), self.metadata)

    def load(self, device: str | None = None) -> tuple[Recommender, np.ndarray]:
        """Check integrity, then rebuild the model and its item ids (see `rundir.load_model`)."""
        if problems := self.verify():
            raise RegistryError(f"{self.tag} failed its integrity check: " + "; ".join(problems))
        return rundir.load_model(self.fetch(), device=device)


def check_files(path: Path, metadata: dict[str, Any]) -> list[str]:
    """Integrity problems of a version's files in `path` against the digests in `metadata`."""
    problems = []
    for name, digest in metadata.get("files", {}).items():
        f = path / name
        if not f.exists():
            problems.append(f"{name} is missing")
        elif file_sha256(f) != digest:
            problems.append(f"{name} changed since registration (sha256 differs)")
    if not metadata.get("files"):
        problems.append("no file digests recorded (not registered by augrec?)")
    return problems


@dataclass(frozen=True)
class Registration:
    """A run directory checked and described for registration (see `prepare_registration`)."""

    run: Path
    run_id: str
    name: str
    files: list[str]
    labels: dict[str, str]
    metadata: dict[str, Any]


def prepare_registration(run_dir: str | os.PathLike[str], require_gate: bool) -> Registration:
    """Check a run directory and build the version's name, labels and metadata.

    Metadata holds the sha256 of every file (checked before any load, promote or export), the
    headline test metrics and the manifest; labels mark the version as augrec's.

    Raises:
        RegistryError: not a run directory, or `require_gate` and the run has no passing
            `gate.json` for exactly this model file.
    """
    run = Path(run_dir).resolve()
    missing = rundir.missing_files(run)
    if missing:
        msg = f"{run_dir}: not a complete run directory (missing {', '.join(missing)})"
        if rundir.MANIFEST in missing:
            msg += "; runs from before manifests existed must be trained again"
        raise RegistryError(msg)
    manifest = rundir.read_json(run, rundir.MANIFEST) or {}
    if manifest.get("format") != MANIFEST_FORMAT:
        raise RegistryError(f"{run / rundir.MANIFEST}: not a run manifest ({MANIFEST_FORMAT})")
    metrics = rundir.read_metrics(run)
    files = rundir.present_files(run)
    digests = {f: file_sha256(run / f) for f in files}
    gate = rundir.read_json(run, rundir.GATE)
    gate_status = "none" if gate is None else "passed" if gate.get("passed") else "failed"
    if require_gate:
        check_gate_for_run(gate, manifest, digests[rundir.MODEL], run)
    labels = {
        MANAGED_BY[0]: MANAGED_BY[1],
        "dataset": manifest["dataset"],
        "model": manifest["model"]["name"],
        "protocol": manifest["protocol"],
        "run-id": manifest["run_id"],
        "data-fingerprint": manifest["data"]["fingerprint"],
        "gate": gate_status,
    }
    metadata = _no_none(
        {
            "run_dir": str(run),
            "test": {k: metrics["test"][k] for k in HEADLINE if k in metrics["test"]},
            "files": digests,
            "manifest": manifest,
        }
    )
    return Registration(
        run=run,
        run_id=manifest["run_id"],
        name=model_name(manifest["dataset"], manifest["model"]["name"]),
        files=files,
        labels=labels,
        metadata=metadata,
    )


class AliasedVersions:
    """What every registry does the same way once it can `get` versions and has `aliases`."""

    aliases: AliasBook

    def get(self, ref: str) -> ModelVersion:  # pragma: no cover - defined by subclasses
        """Resolve a reference (alias, tag, model name or version) to one version."""
        raise NotImplementedError

    def champion(self, alias: str = "production") -> Champion:
        """What `alias` points at, for the gate's regression check (see `gate.Champion`)."""
        tag = self.aliases.get(alias)
        if tag is None:
            return Champion()
        try:
            return Champion(tag, self.get(tag))
        except RegistryError as exc:
            return Champion(tag, error=str(exc))

    def aliases_of(self, tag: str) -> list[str]:
        """Aliases that point at `tag`."""
        return sorted(a for a, t in self.aliases.current().items() if t == tag)

    def _check_servable(self, tag: str) -> None:
        version = self.get(tag)
        if problems := version.verify():
            raise RegistryError(f"{tag} failed its integrity check: " + "; ".join(problems))

    def promote(
        self, ref: str, alias: str = "production", note: str = ""
    ) -> tuple[ModelVersion, dict[str, Any] | None]:
        """Point `alias` at a version (atomic; the old target is kept for rollback).

        Returns the version and the history event (None when the alias already pointed there).
        """
        version = self.get(ref)
        event = self.aliases.set(alias, version.tag, note=note, check=self._check_servable)
        return version, event

    def rollback(
        self, alias: str = "production", note: str = ""
    ) -> tuple[ModelVersion, dict[str, Any]]:
        """Point `alias` back at the version it pointed at before its last promote."""
        event = self.aliases.rollback(alias, note=note, check=self._check_servable)
        return self.get(event["to"]), event


def open_registry(home: str | os.PathLike[str] | None = None) -> Registry | ObjectRegistry:
    """The registry at `home`: a URI (`s3://bucket/prefix`) or a BentoML home (the default).

    A BentoML home is local disk (`$BENTOML_HOME`, else `~/bentoml`); a URI keeps versions
    and aliases on object storage, where pods on other nodes read them (see `objstore`).
    """
    from augrec import storage

    if home is not None and storage.is_remote(home):
        from augrec.registry.objstore import ObjectRegistry

        return ObjectRegistry(str(home))
    return Registry(storage.strip_file_scheme(home) if home is not None else None)


class Registry(AliasedVersions):
    """Immutable model versions in the BentoML store, and the aliases that point at them."""

    def __init__(self, home: str | os.PathLike[str] | None = None):
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.root = self.home / "augrec"
        self.models_dir = self.home / "models"  # BentoML's model store
        self.aliases = AliasBook(self.root / "aliases.json")

    @cached_property
    def _store(self):
        from bentoml._internal.models import ModelStore

        self.models_dir.mkdir(parents=True, exist_ok=True)
        # Passed explicitly to every bentoml.models call: the store is this registry's home,
        # not whichever BENTOML_HOME the process saw first (BentoML caches that globally).
        return ModelStore(self.models_dir)

    # ---- reading -------------------------------------------------------------------------

    def _version(self, model: Any) -> ModelVersion:
        return ModelVersion(
            tag=str(model.tag),
            path=Path(model.path),
            created_at=model.creation_time,
            labels=dict(model.info.labels),
            metadata=dict(model.info.metadata),
        )

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every augrec version in the store (or of one model name), oldest first.

        Entries BentoML cannot read (a copy interrupted before its model.yaml landed) and
        models not registered by augrec are left out.
        """
        from bentoml.exceptions import BentoMLException

        out = []
        if not self.models_dir.is_dir():
            return []
        names = [name] if name else sorted(p.name for p in self.models_dir.iterdir())
        for n in names:
            base = self.models_dir / n
            if not base.is_dir():
                continue
            for vdir in sorted(p for p in base.iterdir() if p.is_dir()):
                try:
                    model = self._store.get(f"{n}:{vdir.name}")
                except (BentoMLException, ValueError, OSError):
                    continue
                if model.info.labels.get(MANAGED_BY[0]) == MANAGED_BY[1]:
                    out.append(self._version(model))
        return sorted(out, key=lambda v: v.created_at)

    def get(self, ref: str) -> ModelVersion:
        """Resolve a reference to one version.

        `ref` is an alias (`production`), a tag (`name:version`, a unique version prefix
        will do), a model name (its latest version) or a bare version (prefix allowed).
        """
        from bentoml.exceptions import BentoMLException

        ref = ref.strip()
        if ":" not in ref:
            aliased = self.aliases.get(ref)
            if aliased is not None:
                return self.get(aliased)
            if (self.models_dir / ref).is_dir():
                ref = f"{ref}:latest"
            else:
                matches = [v for v in self.versions() if v.version.startswith(ref)]
                return only_match(matches, ref, self.home)
        try:
            model = self._store.get(ref)
        except (BentoMLException, ValueError) as exc:
            raise RegistryError(f"{ref}: {exc}") from exc
        if model.info.labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
            raise RegistryError(f"{model.tag} is a BentoML model, but not one augrec registered")
        return self._version(model)

    # ---- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _staging(self) -> Iterator[Any]:
        """A private BentoML store beside `models/` to write one version into (hold the lock).

        Whatever an earlier, killed registration left in `staging/` goes first.
        """
        from bentoml._internal.models import ModelStore

        root = self.root / "staging"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        try:
            yield ModelStore(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _commit(self, tag: Any) -> None:
        """Move a version written whole in staging into the store: one rename, then `latest`."""
        dest = self.models_dir / tag.path()
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.root / "staging" / tag.path(), dest)  # same volume: one atomic step
        # `latest` names the newest version by creation time (BentoML's rule; an imported
        # older version does not take it).
        try:
            current = self._store.get(f"{tag.name}:latest").creation_time
        except Exception:  # none yet, or unreadable: this version is the one to name
            current = None
        if current is None or self._store.get(tag).creation_time >= current:
            atomic_write_text(self.models_dir / tag.latest_path(), tag.version)

    def register(
        self, run_dir: str | os.PathLike[str], require_gate: bool = False
    ) -> tuple[ModelVersion, bool]:
        """Copy a run directory into the store as a new immutable version.

        Returns the version and whether it was created: registering the same run again
        (same manifest `run_id`) returns the existing version instead of a duplicate.

        Raises:
            RegistryError: not a run directory, or `require_gate` and the run has no passing
                `gate.json` for exactly this model file.
        """
        import bentoml

        reg = prepare_registration(run_dir, require_gate)
        with file_lock(self.root / "register.lock"):
            existing = [v for v in self.versions(reg.name) if v.labels.get("run-id") == reg.run_id]
            if existing:
                return existing[0], False
            with self._staging() as staging:
                with bentoml.models.create(
                    reg.name, labels=reg.labels, metadata=reg.metadata, _model_store=staging
                ) as ref:
                    for f in reg.files:
                        shutil.copy2(reg.run / f, ref.path_of(f))
                self._commit(ref.tag)
            return self.get(str(ref.tag)), True

    def export(self, ref: str, dest: str) -> str:
        """Write a version as `<name>-<version>.bentomodel` into a folder.

        `dest` is a local folder (created if missing), a `file://` URI or an object-store URI
        such as `s3://bucket/models/` (passed to BentoML, which needs `s3fs` for it). Aliases
        stay behind: they belong to the registry a version is promoted in. Returns the
        path or URI written.
        """
        import urllib.parse

        import bentoml

        version = self.get(ref)
        self._check_servable(version.tag)
        if "://" not in dest or dest.startswith("file://"):
            folder = Path(urllib.parse.urlsplit(dest).path if "://" in dest else dest)
            folder.mkdir(parents=True, exist_ok=True)
            target = str(folder.resolve())
        else:
            target = dest if dest.endswith("/") else dest + "/"
        try:
            return bentoml.models.export_model(version.tag, target, _model_store=self._store)
        except (ValueError, ImportError, OSError) as exc:
            raise RegistryError(f"export to {dest}: {exc}") from exc

    def import_(self, uri: str) -> tuple[ModelVersion, bool]:
        """Add an exported version (a `.bentomodel` path or URI) under its own tag.

        Importing a version that is already here (same tag, same files) is a no-op that
        returns it; a different model under an existing tag is refused.
        """
        from bentoml.exceptions import BentoMLException
        from bentoml.models import Model

        try:
            incoming = Model.import_from(uri)
        except (BentoMLException, ValueError, ImportError, OSError) as exc:
            raise RegistryError(f"import from {uri}: {exc}") from exc
        if incoming.info.labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
            raise RegistryError(f"{uri}: {incoming.tag} was not registered by augrec")
        digests = dict(incoming.info.metadata.get("files", {}))
        if (self.models_dir / incoming.tag.path()).exists():
            here = self.get(str(incoming.tag))
            if here.metadata.get("files") != digests:
                raise RegistryError(
                    f"{incoming.tag} already exists here with different files; versions are "
                    "immutable and nothing was imported"
                )
            return here, False
        with file_lock(self.root / "register.lock"), self._staging() as staging:
            incoming.save(staging)
            self._commit(incoming.tag)
        version = self.get(str(incoming.tag))
        if problems := version.verify():
            self._store.delete(version.tag)
            raise RegistryError(f"{uri}: import failed its integrity check: " + "; ".join(problems))
        return version, True


def check_gate_for_run(
    gate: dict[str, Any] | None, manifest: dict[str, Any], model_sha256: str, run: Path
) -> None:
    """Raise unless `gate` is a passing verdict for exactly this run's model file."""
    if gate is None:
        raise RegistryError(
            f"--require-gate: {run} has no {rundir.GATE}; run `augrec gate --candidate {run}`"
        )
    candidate = gate.get("candidate", {})
    if candidate.get("model_sha256") != model_sha256 or candidate.get("run_id") != manifest.get(
        "run_id"
    ):
        raise RegistryError(
            f"--require-gate: {run / rundir.GATE} was written for a different model file; "
            "run the gate again"
        )
    if not gate.get("passed"):
        failed = ", ".join(gate.get("failed", [])) or "unknown"
        raise RegistryError(f"--require-gate: the gate failed for {run} (failed: {failed})")
