"""Shared state by URI: object storage (`s3://`, `gs://`, ...) through fsspec; a path is local.

Anything a second process reads (a serving pod, a Ray worker on another node) is named by a
URI. This module is the one place that turns a URI into an fsspec filesystem, copies trees
to and from it, and keeps a local, content-checked cache of what was fetched.

S3 settings come from the environment, as the AWS tools read them (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, an IAM role in a pod), plus one of ours:

    AUGREC_S3_ENDPOINT_URL   an S3-compatible server (MinIO, Ceph, a test's moto server);
                             unset = AWS itself. boto3 clients made here use it too.

Local cache (`AUGREC_CACHE_DIR`, default `~/.cache/augrec`): fetched datasets and registry
versions land there through a temporary sibling and a rename, so a reader never sees half
a copy. Importing this module imports neither fsspec nor boto3.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

ENDPOINT_ENV = "AUGREC_S3_ENDPOINT_URL"
CACHE_ENV = "AUGREC_CACHE_DIR"


def is_remote(uri: str | os.PathLike[str]) -> bool:
    """Whether `uri` names object storage (anything with a scheme other than `file://`)."""
    s = str(uri)
    return "://" in s and not s.startswith("file://")


def strip_file_scheme(uri: str | os.PathLike[str]) -> str:
    """`file:///x` -> `/x`; anything else unchanged."""
    s = str(uri)
    return s[len("file://") :] if s.startswith("file://") else s


def scheme(uri: str) -> str:
    """The URI's scheme (`s3`, `gs`, ...); `file` for a local path."""
    return uri.split("://", 1)[0] if is_remote(uri) else "file"


def join(uri: str, *parts: str) -> str:
    """Join path parts onto a URI (or local path) with `/`."""
    out = str(uri).rstrip("/")
    for p in parts:
        out = f"{out}/{str(p).strip('/')}"
    return out


def storage_options(uri: str) -> dict[str, Any]:
    """The fsspec options for `uri`: the S3 endpoint from `AUGREC_S3_ENDPOINT_URL`, if set."""
    if scheme(uri) in ("s3", "s3a") and os.environ.get(ENDPOINT_ENV):
        return {"client_kwargs": {"endpoint_url": os.environ[ENDPOINT_ENV]}}
    return {}


def filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem for `uri` and the path inside it."""
    import fsspec.core

    uri = strip_file_scheme(uri)
    fs, path = fsspec.core.url_to_fs(uri, **storage_options(uri))
    return fs, path


def s3_client() -> Any:
    """A boto3 S3 client honouring `AUGREC_S3_ENDPOINT_URL` (for what s3fs does not expose)."""
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get(ENDPOINT_ENV) or None)


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`)."""
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def cache_root() -> Path:
    """Where fetched objects are kept on this machine."""
    raw = os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "augrec")
    return Path(os.path.expandvars(raw)).expanduser()


def cache_dir_for(uri: str, kind: str) -> Path:
    """A stable local directory for `uri` under the cache (`kind`: data, models, ...)."""
    digest = hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
    name = uri.rstrip("/").rsplit("/", 1)[-1] or "root"
    return cache_root() / kind / f"{name}-{digest}"


def upload(local: str | os.PathLike[str], uri: str) -> str:
    """Copy a local file or directory tree to `uri` (its contents land under `uri`)."""
    local = Path(local)
    fs, path = filesystem(uri)
    if local.is_dir():
        for f in sorted(p for p in local.rglob("*") if p.is_file()):
            fs.put_file(str(f), f"{path.rstrip('/')}/{f.relative_to(local).as_posix()}")
    else:
        fs.put_file(str(local), path)
    return uri


def download(uri: str, local: str | os.PathLike[str]) -> Path:
    """Copy the file or tree at `uri` into `local` (a directory for a tree)."""
    fs, path = filesystem(uri)
    local = Path(local)
    if fs.isdir(path):
        base = path.rstrip("/")
        for f in fs.find(base):
            rel = f[len(base) :].lstrip("/")
            target = local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(f, str(target))
    else:
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(local))
    return local


def local_copy(uri: str | os.PathLike[str], kind: str = "data") -> Path:
    """A local path holding what `uri` names: the path itself when local, else a cached copy.

    The copy is fetched once per machine into a temporary sibling and renamed into place;
    later calls reuse it (objects under a URI we hand out are never rewritten: datasets and
    registry versions are immutable by convention, and a new upload gets a new URI).
    """
    if not is_remote(uri):
        return Path(strip_file_scheme(uri))
    uri = str(uri)
    tree = cache_dir_for(uri, kind)  # a directory's copy
    single = tree.with_name(tree.name + "-file")  # holds a single object's copy
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    for cached in (tree, single / name):
        if cached.exists():  # no request at all: the copy is immutable, like its source
            return cached
    fs, path = filesystem(uri)
    is_dir = fs.isdir(path)
    out = tree if is_dir else single
    target = out if is_dir else out / name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        download(uri, tmp if is_dir else tmp / target.name)
        try:
            os.replace(tmp, out)
        except OSError:  # another process renamed its copy first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
