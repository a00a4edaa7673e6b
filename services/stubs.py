"""Python stubs for `protos/augrec_v1.proto`, generated on first use and cached.

Nothing generated is committed or edited by hand. `load()` runs `grpc_tools.protoc`
in-process (~0.2 s) the first time a given proto (and protoc/protobuf version) is seen,
writes the modules into the first writable cache directory, and imports them from there:

1. `$AUGREC_PROTO_CACHE`, if set;
2. `_generated/` beside this file (a source checkout, or a writable site-packages);
3. `$XDG_CACHE_HOME/augrec/protos` (default `~/.cache/augrec/protos`);
4. the system temporary directory.

Each cache entry is named by a hash of the proto and the tool versions, so an edited proto
is regenerated and two versions never mix. Images with a read-only file system run
`python -m augrec.services.build_protos` at build time and point `AUGREC_PROTO_CACHE` at it.

The Open Inference Protocol is served from `tritonclient`'s bundled stubs instead: a second
copy of the `inference` proto package in one process fails with "duplicate symbol".
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).resolve().parent / "protos" / "augrec_v1.proto"
MODULE = PROTO.stem  # augrec_v1 -> augrec_v1_pb2, augrec_v1_pb2_grpc
_lock = threading.Lock()


def cache_dirs() -> list[Path]:
    """Where stubs may be cached, in order of preference."""
    dirs = []
    if env := os.environ.get("AUGREC_PROTO_CACHE"):
        dirs.append(Path(env))
    dirs.append(PROTO.parent.parent / "_generated")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    dirs.append(Path(xdg).expanduser() / "augrec" / "protos")
    dirs.append(Path(tempfile.gettempdir()) / f"augrec-protos-{os.getuid()}")
    return dirs


def cache_key() -> str:
    """Hash of the proto and of the generator and runtime versions."""
    digest = hashlib.sha256(PROTO.read_bytes())
    for dist in ("grpcio-tools", "protobuf"):
        digest.update(f"{dist}={importlib.metadata.version(dist)}".encode())
    return digest.hexdigest()[:16]


def generate(out_dir: str | os.PathLike[str]) -> Path:
    """Generate the stubs under `out_dir` (a no-op when present); returns their folder."""
    out_dir = Path(out_dir)
    target = out_dir / cache_key()
    if all((target / f"{MODULE}{s}.py").exists() for s in ("_pb2", "_pb2_grpc")):
        return target
    import importlib.resources

    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir))
    try:
        include = importlib.resources.files("grpc_tools") / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO.parent}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--grpc_python_out={tmp}",
            str(PROTO),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {PROTO} (see its message above)")
        try:
            os.replace(tmp, target)  # atomic: readers see no stubs or all of them
        except OSError:
            if not target.is_dir():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _import(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running: the grpc module imports the message module by this name.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load() -> tuple[ModuleType, ModuleType]:
    """The message and service modules (`augrec_v1_pb2`, `augrec_v1_pb2_grpc`)."""
    with _lock:
        if f"{MODULE}_pb2_grpc" in sys.modules:
            return sys.modules[f"{MODULE}_pb2"], sys.modules[f"{MODULE}_pb2_grpc"]
        errors = []
        for d in cache_dirs():
            try:
                folder = generate(d)
                break
            except OSError as exc:  # read-only or missing: try the next place
                errors.append(f"{d}: {exc}")
        else:
            raise RuntimeError("cannot write the gRPC stubs anywhere: " + "; ".join(errors))
        pb2 = _import(f"{MODULE}_pb2", folder / f"{MODULE}_pb2.py")
        pb2_grpc = _import(f"{MODULE}_pb2_grpc", folder / f"{MODULE}_pb2_grpc.py")
        return pb2, pb2_grpc
