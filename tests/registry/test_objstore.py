"""The registry on object storage (`--home s3://...`) against a real S3 server (moto) on loopback.

Register in one process, serve from another: every reader below is a separate Python process
with its own empty model cache, so nothing is shared but the S3 server.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from augrec.errors import RegistryError
from cli_helpers import run_cli

LOAD = """
import json, sys
from augrec.serving.loading import load
m = load(sys.argv[1], sys.argv[2])
print(json.dumps({"version": m.version, "items": int(len(m.item_ids))}))
"""


def load_elsewhere(ref: str, home: str, cache) -> dict:
    """`augrec.serving.loading.load` in a fresh process with its own cache directory."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD, ref, home],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AUGREC_CACHE_DIR": str(cache)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def s3_home(s3_server, tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("AUGREC_CACHE_DIR", str(tmp_path / "cache"))
    return s3_server.uri("registry")


def test_register_promote_and_serve_from_another_process(runs, s3_home, tmp_path, capsys):
    assert run_cli("models", "register", str(runs["popularity"]), "--home", s3_home) == 0
    first = capsys.readouterr().out.split()[-1]
    assert run_cli("models", "register", str(runs["itemknn"]), "--home", s3_home) == 0
    second = capsys.readouterr().out.split()[-1]
    assert first.startswith("augrec-shop-popularity:") and second.startswith("augrec-shop-itemknn:")
    assert run_cli("models", "register", str(runs["itemknn"]), "--home", s3_home) == 0
    assert "already registered" in capsys.readouterr().out

    assert run_cli("models", "promote", first, "--home", s3_home) == 0
    assert load_elsewhere("production", s3_home, tmp_path / "pod1")["version"] == first
    assert run_cli("models", "promote", second.split(":")[1][:6], "--home", s3_home) == 0
    assert f"{first} -> {second}" in capsys.readouterr().out
    served = load_elsewhere("production", s3_home, tmp_path / "pod2")
    assert served["version"] == second and served["items"] > 100

    assert run_cli("models", "list", "--home", s3_home, "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["tag"] for r in rows] == [first, second] and rows[1]["aliases"] == ["production"]
    assert run_cli("models", "show", "production", "--home", s3_home, "--json") == 0
    doc = json.loads(capsys.readouterr().out)
    manifest = json.loads((runs["itemknn"] / "manifest.json").read_text())
    assert doc["tag"] == second and doc["manifest"] == manifest and doc["integrity"] == "ok"
    assert doc["path"] == f"{s3_home}/versions/{second.replace(':', '/')}"

    assert run_cli("models", "rollback", "--home", s3_home) == 0
    from augrec.serving.loading import load

    assert load("production", s3_home).version == first  # here, through this cache
    assert run_cli("models", "export", first, str(tmp_path / "x"), "--home", s3_home) == 2
    assert "object storage already" in capsys.readouterr().err


CRASH = """
import os, signal, sys
from augrec.registry.objstore import ObjectAliasBook
from augrec.registry.store import open_registry

def killed(self, doc, etag):  # the process dies just before the alias document is written
    os.kill(os.getpid(), signal.SIGKILL)

ObjectAliasBook._put = killed
reg = open_registry(sys.argv[1])
version, _ = reg.register(sys.argv[2])
print(version.tag, flush=True)
reg.promote(version.tag)
"""


def test_a_crash_between_upload_and_alias_move_keeps_the_old_version_serving(
    runs, s3_home, tmp_path
):
    from augrec.registry.store import open_registry

    reg = open_registry(s3_home)
    old, _ = reg.register(runs["popularity"])
    reg.promote(old.tag)
    out = subprocess.run(
        [sys.executable, "-c", CRASH, s3_home, str(runs["itemknn"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == -9, out.stderr[-3000:]
    new = out.stdout.split()[0]
    assert new.startswith("augrec-shop-itemknn:")  # uploaded completely ...
    assert reg.get(new).verify() == []
    assert reg.aliases.get("production") == old.tag  # ... but the alias never moved
    assert load_elsewhere("production", s3_home, tmp_path / "pod")["version"] == old.tag


def test_an_unfinished_upload_is_invisible_and_a_changed_file_is_refused(runs, s3_home):
    from augrec import storage
    from augrec.registry.store import open_registry

    reg = open_registry(s3_home)
    v, _ = reg.register(runs["popularity"])
    # An upload killed before its version.json: files without the commit marker.
    storage.upload(runs["itemknn"], f"{s3_home}/versions/augrec-shop-itemknn/partial00000000")
    assert [x.tag for x in reg.versions()] == [v.tag]
    with pytest.raises(RegistryError, match="no alias, model or version"):
        reg.get("augrec-shop-itemknn")

    fs, path = storage.filesystem(f"{v.location}/model.pt")
    fs.pipe_file(path, b"not the registered model")
    with pytest.raises(RegistryError, match="model.pt changed since registration"):
        reg.promote(v.tag)
    assert reg.aliases.get("production") is None


def test_concurrent_alias_moves_lose_no_update(runs, s3_home):
    """Two writers on one alias document: compare-and-swap keeps every move of both."""
    from augrec.registry.objstore import ObjectAliasBook

    book = ObjectAliasBook(f"{s3_home}/aliases.json")
    tags = ["m:a", "m:b"]
    errors = []

    def writer(alias: str) -> None:
        try:
            for i in range(6):
                book.set(alias, tags[i % 2], note=f"{alias} {i}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(a,)) for a in ("staging", "canary")]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    doc = book.read()
    for alias in ("staging", "canary"):
        notes = [e["note"] for e in doc["aliases"][alias]["history"]]
        assert notes == [f"{alias} {i}" for i in range(6)], notes
    assert time.monotonic() - t0 < 30


@pytest.mark.e2e
def test_augrec_serve_answers_from_the_s3_registry(runs, s3_home, tmp_path, capsys):
    import httpx
    import pandas as pd

    assert run_cli("models", "register", str(runs["itemknn"]), "--home", s3_home) == 0
    tag = capsys.readouterr().out.split()[-1]
    assert run_cli("models", "promote", tag, "--home", s3_home) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    env = {**os.environ, "AUGREC_CACHE_DIR": str(tmp_path / "pod"), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("BENTOML_HOME", None)
    argv = [sys.executable, "-m", "augrec.cli", "serve", "--home", s3_home, "--host", "127.0.0.1"]
    argv += ["--http-port", str(port), "--grpc-port", "0", "--feature-repo", str(tmp_path / "no")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                # not /readyz: without a feature store the pod is up but not ready
                if httpx.get(f"http://127.0.0.1:{port}/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        item = int(pd.read_parquet(runs["itemknn"] / "recommendations.parquet")["item_id"][0])
        body = {"user_id": 1, "k": 5, "recent_items": [item]}
        answer = httpx.post(f"http://127.0.0.1:{port}/recommend", json=body, timeout=10).json()
        assert answer["model_version"] == tag and len(answer["items"]) == 5
        assert (tmp_path / "pod" / "models").is_dir()  # fetched into this pod's own cache
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
