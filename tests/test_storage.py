"""Shared state by URI (`augrec.storage`): datasets on a real S3 server (moto) on loopback."""

import json

import pytest

from augrec import storage
from augrec.data.loaders import load_dataset
from augrec.errors import DataValidationError
from cli_helpers import run_cli


def test_paths_and_uris():
    assert not storage.is_remote("/data/x") and not storage.is_remote("file:///data/x")
    assert storage.is_remote("s3://b/x") and storage.scheme("gs://b/x") == "gs"
    assert storage.join("s3://b/x/", "/v/", "f.json") == "s3://b/x/v/f.json"
    assert storage.local_copy("file:///data/x").as_posix() == "/data/x"


def test_a_dataset_by_uri_is_fetched_once_and_reads_like_the_local_one(
    s3_server, synthetic_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("AUGREC_CACHE_DIR", str(tmp_path / "cache"))
    uri = storage.upload(synthetic_dir, s3_server.uri("data") + "/shop")
    remote, local = load_dataset(uri), load_dataset(synthetic_dir)
    assert remote.interactions.equals(local.interactions)
    cached = storage.local_copy(uri)
    assert cached.is_relative_to(tmp_path / "cache")
    fs, path = storage.filesystem(uri)
    fs.rm(path, recursive=True)  # the cached copy is what later readers on this machine get
    assert storage.local_copy(uri) == cached
    with pytest.raises(DataValidationError, match="no such object"):
        load_dataset(s3_server.uri("nothing-here"))


def test_augrec_train_reads_data_by_uri_and_records_it(
    s3_server, synthetic_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("AUGREC_CACHE_DIR", str(tmp_path / "cache"))
    uri = storage.upload(synthetic_dir, s3_server.uri("data") + "/shop")
    out = tmp_path / "run"
    assert run_cli("train", "--data", uri, "--model", "popularity", "--out", str(out)) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"]["path"] == uri


def test_a_registry_uri_reaches_serving_workers_as_augrec_registry():
    from augrec.serving.config import ServingConfig

    env = ServingConfig(home="s3://models/augrec").to_env()
    assert env["AUGREC_REGISTRY"] == "s3://models/augrec" and "BENTOML_HOME" not in env
    assert ServingConfig.from_env(env).home == "s3://models/augrec"
    local = ServingConfig(home="/var/lib/bentoml").to_env()
    assert local["BENTOML_HOME"] == "/var/lib/bentoml" and "AUGREC_REGISTRY" not in local
