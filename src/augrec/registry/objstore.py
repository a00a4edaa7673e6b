"""The model registry on object storage (`--home s3://bucket/prefix`), for pods on many nodes.

BentoML's model store is local disk, which a serving pod on another node cannot read. Under a
URI the registry keeps the same two things itself:

    <home>/versions/<name>/<version>/          one immutable version
        manifest.json metrics.json model.pt config.json [gate.json] [features.json]
        version.json                           tag, created_at, labels, metadata (incl. the
                                               sha256 of every file); written LAST
    <home>/aliases.json                        the same document as a local registry's

Registration uploads the run's files, then `version.json`: a version without it is an upload
that did not finish, and nothing lists, resolves or serves it. Readers (serving pods) resolve
an alias, download the version into the local cache (`augrec.storage`, `AUGREC_CACHE_DIR`)
and check every file's sha256 before the model is built.

Alias moves are compare-and-swap on S3: the alias document is read with its ETag and written
back with `If-Match: <etag>` (`If-None-Match: *` when creating it); a concurrent writer makes
the write fail with 412 and the move is re-read and retried. A process killed at any point
leaves the previous document whole (a PUT replaces an object atomically). On other schemes
(`gs://`, `memory://`, ...) there is no compare-and-swap here: one writer at a time (the
pipeline's deploy step) is the rule, and readers still see whole documents.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from augrec import rundir, storage
from augrec.errors import RegistryError
from augrec.registry.aliases import AliasBook, empty, parse
from augrec.registry.store import (
    MANAGED_BY,
    AliasedVersions,
    ModelVersion,
    check_files,
    only_match,
    prepare_registration,
)

VERSION_FILE = "version.json"
VERSION_FORMAT = "augrec.version/1"
# Compare-and-swap retries before an alias move gives up (each one re-reads the document).
MAX_ATTEMPTS = 20
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


def _new_version() -> str:
    """A BentoML-style version string: 16 lowercase base32 characters, unique."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    return "".join(secrets.choice(alphabet) for _ in range(16))


@dataclass(frozen=True)
class RemoteVersion(ModelVersion):
    """A version on object storage; `path` is its local cache directory (filled on `fetch`)."""

    uri: str = ""

    @property
    def location(self) -> str:
        """The version's URI."""
        return self.uri

    def _read_json(self, name: str) -> dict[str, Any] | None:
        if (self.path / name).exists():
            return rundir.read_json(self.path, name)
        fs, path = storage.filesystem(storage.join(self.uri, name))
        try:
            return json.loads(fs.cat_file(path))
        except FileNotFoundError:
            return None

    def fetch(self) -> Path:
        """Download the version's files into the local cache once; return that directory."""
        if not (self.path / rundir.MODEL).exists():
            storage.local_copy(self.uri, kind="models")
        return self.path

    def verify(self) -> list[str]:
        """Integrity problems of the local copy; a bad copy is fetched again once."""
        problems = check_files(self.fetch(), self.metadata)
        if problems and self.metadata.get("files"):
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)
            problems = check_files(self.fetch(), self.metadata)
        return problems


class ObjectAliasBook(AliasBook):
    """The alias document at a URI; moves are compare-and-swap on S3 (see the module doc)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.path = uri  # shown by `augrec models aliases`
        self.lock_path = None

    def _get(self) -> tuple[dict[str, Any], str | None]:
        """The document and its ETag (None when it does not exist yet)."""
        if storage.scheme(self.uri) in ("s3", "s3a"):
            from botocore.exceptions import ClientError

            bucket, key = storage.split_s3(self.uri)
            try:
                obj = storage.s3_client().get_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return empty(), None
                raise RegistryError(f"{self.uri}: {exc}") from exc
            return parse(obj["Body"].read(), self.uri), obj["ETag"]
        fs, path = storage.filesystem(self.uri)
        try:
            return parse(fs.cat_file(path), self.uri), "exists"
        except FileNotFoundError:
            return empty(), None

    def _put(self, doc: dict[str, Any], etag: str | None) -> bool:
        """Write `doc` if the object is still at `etag`; False when another writer won."""
        body = (json.dumps(doc, indent=2) + "\n").encode()
        if storage.scheme(self.uri) in ("s3", "s3a"):
            from botocore.exceptions import ClientError

            bucket, key = storage.split_s3(self.uri)
            condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
            try:
                storage.s3_client().put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/json",
                    **condition,
                )
            except ClientError as exc:
                err = exc.response.get("Error", {})
                status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
                if err.get("Code") in _CONFLICT_CODES or status in _CONFLICT_CODES:
                    return False
                raise RegistryError(f"{self.uri}: {exc}") from exc
            return True
        fs, path = storage.filesystem(self.uri)  # single-writer rule (see the module doc)
        fs.pipe_file(path, body)
        return True

    def read(self) -> dict[str, Any]:
        """The whole document (an empty one when no alias was ever set)."""
        return self._get()[0]

    def _update(self, change):  # type: ignore[override]
        """Compare-and-swap: re-read and re-apply `change` until the write is not beaten."""
        for attempt in range(MAX_ATTEMPTS):
            doc, etag = self._get()
            result = change(doc)
            if self._put(doc, etag):
                return result
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise RegistryError(
            f"{self.uri}: the alias document changed under every one of {MAX_ATTEMPTS} "
            "attempts; nothing was moved"
        )


class ObjectRegistry(AliasedVersions):
    """Immutable versions and their aliases under one object-storage URI."""

    def __init__(self, home: str):
        if not storage.is_remote(home):
            raise RegistryError(f"--home: {home} is not an object-storage URI")
        self.home = home.rstrip("/")
        self.versions_uri = storage.join(self.home, "versions")
        self.aliases = ObjectAliasBook(storage.join(self.home, "aliases.json"))

    # ---- reading -------------------------------------------------------------------------

    def _version(self, doc: dict[str, Any], uri: str) -> RemoteVersion:
        return RemoteVersion(
            tag=doc["tag"],
            path=storage.cache_dir_for(uri, "models"),
            created_at=datetime.fromisoformat(doc["created_at"]),
            labels=dict(doc.get("labels", {})),
            metadata=dict(doc.get("metadata", {})),
            uri=uri,
        )

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every complete version (one with its `version.json`), oldest first."""
        fs, base = storage.filesystem(self.versions_uri)
        fs.invalidate_cache()
        pattern = f"{base}/{name or '*'}/*/{VERSION_FILE}"
        out = []
        for f in fs.glob(pattern):
            try:
                doc = json.loads(fs.cat_file(f))
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            if doc.get("format") != VERSION_FORMAT:
                continue
            if doc.get("labels", {}).get(MANAGED_BY[0]) != MANAGED_BY[1]:
                continue
            name_, version = doc["tag"].split(":")
            out.append(self._version(doc, storage.join(self.versions_uri, name_, version)))
        return sorted(out, key=lambda v: v.created_at)

    def get(self, ref: str) -> ModelVersion:
        """Resolve an alias, tag, model name (its latest version) or version (prefix allowed)."""
        ref = ref.strip()
        if ":" not in ref:
            aliased = self.aliases.get(ref)
            if aliased is not None:
                return self.get(aliased)
        versions = self.versions()
        if ":" in ref:
            name, version = ref.split(":", 1)
            matches = [v for v in versions if v.name == name]
            if version != "latest":
                matches = [v for v in matches if v.version.startswith(version)]
            elif matches:
                return matches[-1]
        else:
            named = [v for v in versions if v.name == ref]
            if named:
                return named[-1]
            matches = [v for v in versions if v.version.startswith(ref)]
        return only_match(matches, ref, self.home)

    # ---- writing -------------------------------------------------------------------------

    def register(self, run_dir: str, require_gate: bool = False) -> tuple[ModelVersion, bool]:
        """Upload a run directory as a new immutable version (files first, `version.json` last).

        Registering the same run again (same manifest `run_id`) returns its version. Two
        processes registering the same run at the same moment can make two versions of it
        (harmless: both are whole and immutable); the pipeline registers each run once.
        """
        reg = prepare_registration(run_dir, require_gate)
        existing = [v for v in self.versions(reg.name) if v.labels.get("run-id") == reg.run_id]
        if existing:
            return existing[0], False
        version = _new_version()
        uri = storage.join(self.versions_uri, reg.name, version)
        fs, base = storage.filesystem(uri)
        for f in reg.files:
            fs.put_file(str(reg.run / f), f"{base}/{f}")
        doc = {
            "format": VERSION_FORMAT,
            "tag": f"{reg.name}:{version}",
            "created_at": datetime.now(UTC).isoformat(),
            "labels": reg.labels,
            "metadata": reg.metadata,
        }
        fs.pipe_file(f"{base}/{VERSION_FILE}", (json.dumps(doc, indent=2) + "\n").encode())
        return self._version(doc, uri), True

    def export(self, ref: str, dest: str) -> str:
        """Not offered: an object-store registry is already where every pod can read it."""
        raise RegistryError(
            f"export: {self.home} is on object storage already; serve from it with "
            f"--home {self.home}, or export from a local registry"
        )

    def import_(self, uri: str) -> tuple[ModelVersion, bool]:
        """Not offered: register the run directory into this registry instead."""
        raise RegistryError(
            f"import: {self.home} is on object storage; register the run directory with "
            f"`augrec models register RUN_DIR --home {self.home}`"
        )
