"""Helpers for the serving tests: a small served world, and a real server process.

The world is built the way a user builds one: synthetic data, the Feast repo (the feature
tests' helpers: ingest, apply, materialize), a trained run with its feature contract,
registered into a temporary BentoML home and promoted to `production`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
# The feature and registry tests keep their helpers in plain modules; reuse them.
for _dir in (HERE.parent / "features", HERE.parent / "registry"):
    if str(_dir) not in sys.path:
        sys.path.append(str(_dir))

from feature_helpers import copy_feature_repo  # noqa: E402
from registry_helpers import train_run  # noqa: E402

REPO_ROOT = HERE.parents[1]
# The `secured` server's keys, one per test that spends rate budget, and its limit.
API_KEYS = {
    name: f"test-key-{name}-0123456789abcdef" for name in ("api", "fuzz", "http", "grpc", "hostile")
}
RATE_LIMIT, RATE_BURST = 20, 40


def bearer(name: str) -> dict[str, str]:
    """The `authorization` header (or gRPC metadata) carrying key `name`."""
    return {"authorization": f"Bearer {API_KEYS[name]}"}


@dataclass(frozen=True)
class World:
    """Everything a served model needs, on disk."""

    data: Path
    feature_repo: Path
    run: Path
    home: Path
    tag: str


def build_world(root: Path, model: str = "itemknn", params: dict | None = None) -> World:
    """Data -> Feast repo (online store loaded) -> trained run + contract -> registry."""
    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.features import contract, ingest, spec
    from augrec.features.store import apply, materialize, open_store
    from augrec.registry.store import Registry

    data = root / "shop"
    data.mkdir(parents=True)
    interactions, items = generate(SyntheticConfig(users=300, items=120, seed=3))
    interactions.to_parquet(data / "interactions.parquet", index=False)
    items.to_parquet(data / "items.parquet", index=False)

    repo = copy_feature_repo(root / "feature_repo")
    ingest.write_sources(ingest.build_sources(interactions, items), spec.sources_dir(repo))
    store = open_store(repo)
    apply(store)
    materialize(store)

    run = train_run(data, root / "runs" / model, model, params or {"neighbors": 50})
    build_search_index(run, data, root / "text-cache")
    doc = contract.record(store, [spec.RECOMMENDER_SERVICE], store.config.project)
    contract.write(doc, run)
    home = root / "bentoml"
    registry = Registry(home)
    version, _ = registry.register(run)
    registry.promote(version.tag, note="serving tests")
    return World(data, repo, run, home, version.tag)


def build_search_index(run: Path, data: Path, cache: Path) -> Path:
    """The run's search index over its data's catalog (before registering: it travels)."""
    from augrec import rundir
    from augrec.data.loaders import load_dataset
    from augrec.search.catalog import catalog_from_dataset
    from augrec.search.index import SearchIndex, SearchParams

    _, item_ids = rundir.load_model(run)
    catalog = catalog_from_dataset(load_dataset(data), item_ids)
    params = SearchParams(alpha=0.5, personalization=0.5, depth=50)
    return SearchIndex.build(catalog, params, cache_dir=cache).save(run / rundir.SEARCH_INDEX)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `bentoml serve` subprocess with its HTTP and gRPC addresses."""

    proc: subprocess.Popen
    http: str
    grpc: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def server_env(world: World, **overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BENTOML_HOME": str(world.home),
            "BENTOML_DO_NOT_TRACK": "true",
            "AUGREC_MODEL": "",  # production alias
            "AUGREC_FEATURE_REPO": str(world.feature_repo),
            "AUGREC_FEATURE_ENV": "local",
        }
    )
    env.pop("AUGREC_FEATURE_SOURCES", None)
    env.update(overrides)
    return env


def start_server(
    world: World, log: Path, timeout: float = 120, probe: str = "/readyz", **env: str
) -> Server:
    """Start `bentoml serve` on loopback with free ports; return once `probe` answers 200."""
    http_port, grpc_port = free_port(), free_port()
    cmd = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "augrec.services.service:AugrecService",
        "--host",
        "127.0.0.1",
        "--port",
        str(http_port),
    ]
    env = server_env(world, AUGREC_GRPC_HOST="127.0.0.1", AUGREC_GRPC_PORT=str(grpc_port), **env)
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    server = Server(proc, f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{server.http}{probe}", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"server not ready after {timeout} s:\n{log.read_text()[-4000:]}")
