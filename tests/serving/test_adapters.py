"""The adapters without a server: stub generation, the OIP decoder, `augrec serve`."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from augrec.serving.config import ServingConfig
from augrec.serving.errors import InvalidRequest
from cli_helpers import run_cli


def test_stubs_are_generated_once_per_proto_into_the_cache(tmp_path):
    from augrec.services import stubs

    folder = stubs.generate(tmp_path)
    assert folder.parent == tmp_path and folder.name == stubs.cache_key()
    made = {p.name for p in folder.iterdir()}
    assert made == {"augrec_v1_pb2.py", "augrec_v1_pb2_grpc.py"}
    mtime = (folder / "augrec_v1_pb2.py").stat().st_mtime_ns
    assert stubs.generate(tmp_path) == folder  # cached: not regenerated
    assert (folder / "augrec_v1_pb2.py").stat().st_mtime_ns == mtime
    pb2, pb2_grpc = stubs.load()
    assert pb2.DESCRIPTOR.package == "augrec.v1" and hasattr(pb2_grpc, "RecommenderStub")
    assert stubs.load() == (pb2, pb2_grpc)


def test_build_protos_writes_where_asked(tmp_path, capsys):
    from augrec.services import build_protos

    build_protos.main(["--out", str(tmp_path)])
    assert (tmp_path / capsys.readouterr().out.strip() / "augrec_v1_pb2.py").exists()


def _infer_request(**tensors):
    from tritonclient.grpc import service_pb2 as pb

    req = pb.ModelInferRequest(model_name="recommender")
    for name, (dtype, shape, raw) in tensors.items():
        req.inputs.add(name=name, datatype=dtype, shape=shape)
        req.raw_input_contents.append(raw)
    return req


def test_oip_decoder_reads_raw_tensors_and_names_bad_inputs():
    from augrec.services.oip import parse_infer

    users = np.asarray([3, 4], dtype=np.int64).tobytes()
    two = ("INT64", [2], users)
    category = struct.pack("<I", 6) + b"cat_01"
    req = _infer_request(
        user_id=("INT64", [2, 1], users),
        k=("INT32", [1], np.asarray([7], dtype=np.int32).tobytes()),
        exclude_seen=("BOOL", [1], b"\x00"),
        category=("BYTES", [1], category),
    )
    assert parse_infer(req) == ([3, 4], {"k": 7, "exclude_seen": False, "category": "cat_01"})
    bad = [
        (_infer_request(k=("INT64", [1], users[:8])), "user_id"),
        (_infer_request(user_id=("INT64", [3], users)), "user_id"),
        (_infer_request(user_id=("FP32", [1], b"\x00" * 4)), "user_id"),
        (_infer_request(user_id=two, k=("INT64", [2], users)), "k"),
        (_infer_request(user_id=two, topk=("INT64", [1], users[:8])), "topk"),
        (_infer_request(user_id=two, category=("BYTES", [1], b"\x09")), "category"),
    ]
    for req, field in bad:
        with pytest.raises(InvalidRequest) as err:
            parse_infer(req)
        assert err.value.field == field, req


def test_serve_needs_a_model_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "empty"))
    assert run_cli("serve") == 2
    assert "no model is registered" in capsys.readouterr().err


def test_serve_command_carries_the_config_to_bentoml(world, monkeypatch):
    from augrec.cli.serve import serve_command

    monkeypatch.delenv("AUGREC_MODEL", raising=False)
    config = ServingConfig(model=world.tag, home=str(world.home), grpc_port=6000)
    argv, env = serve_command(config, "127.0.0.1", 3999)
    assert argv[:4] == [sys.executable, "-m", "bentoml", "serve"]
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "3999"]
    assert ServingConfig.from_env(env) == config


def test_serve_execs_bentoml_on_the_resolved_version(world, monkeypatch):
    import os

    seen = {}
    monkeypatch.setattr(os, "execvpe", lambda exe, argv, env: seen.update(argv=argv, env=env))
    assert run_cli("serve", "--home", str(world.home), "--grpc-port", "0") == 0
    assert seen["env"]["AUGREC_MODEL"] == world.tag  # the alias, resolved once
    assert seen["env"]["AUGREC_GRPC_PORT"] == "0"
    assert seen["env"]["AUGREC_READINESS_REQUIRES_STORE"] == "false"


def test_serve_keeps_variables_set_outside_and_reads_its_options_from_them(
    world, monkeypatch, capsys
):
    import os

    seen = {}
    monkeypatch.setattr(os, "execvpe", lambda exe, argv, env: seen.update(env=env))
    # What a chart or a container sets: settings without a `serve` option, and with one.
    monkeypatch.setenv("AUGREC_MAX_BATCH_SIZE", "64")
    monkeypatch.setenv("AUGREC_BATCH_WAIT_MS", "2.5")
    monkeypatch.setenv("AUGREC_RATE_LIMIT", "7")
    assert run_cli("serve", "--home", str(world.home), "--grpc-port", "0") == 0
    config = ServingConfig.from_env(seen["env"])
    assert (config.max_batch_size, config.batch_wait_ms, config.rate_limit) == (64, 2.5, 7.0)
    # An option given on the command line wins over its variable.
    assert run_cli("serve", "--home", str(world.home), "--grpc-port", "0", "--rate-limit", "3") == 0
    assert ServingConfig.from_env(seen["env"]).rate_limit == 3.0
    # A bad variable is refused before BentoML starts, naming it.
    seen.clear()
    monkeypatch.setenv("AUGREC_BATCH_WAIT_MS", "soon")
    assert run_cli("serve", "--home", str(world.home), "--grpc-port", "0") == 2 and not seen
    assert "AUGREC_BATCH_WAIT_MS" in capsys.readouterr().err


def test_serve_carries_access_settings_and_checks_them_before_starting(
    world, monkeypatch, tmp_path, capsys
):
    import os

    from tls_helpers import self_signed

    seen = {}
    monkeypatch.setattr(os, "execvpe", lambda exe, argv, env: seen.update(env=env))
    monkeypatch.delenv("AUGREC_API_KEYS_FILE", raising=False)
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("AUGREC_API_KEYS", "k" * 32)
    home = ["--home", str(world.home), "--grpc-port", "0"]
    tls = ["--grpc-tls-cert", str(cert), "--grpc-tls-key", str(key)]
    limits = ["--rate-limit", "2.5", "--rate-limit-burst", "5", "--max-request-bytes", "2048"]
    assert run_cli("serve", *home, *tls, *limits) == 0
    config = ServingConfig.from_env(seen["env"])
    assert (config.rate_limit, config.rate_limit_burst, config.max_request_bytes) == (2.5, 5, 2048)
    assert config.grpc_tls_cert == str(cert.resolve())
    assert seen["env"]["AUGREC_API_KEYS"] == "k" * 32  # passed through, not in the config
    assert "k" * 32 not in capsys.readouterr().err  # and never printed

    refusals = [
        ([*tls[:2]], {}, "go together"),
        (["--grpc-tls-cert", str(tmp_path), "--grpc-tls-key", str(key)], {}, "cannot read"),
        ([], {"AUGREC_API_KEYS": "too-short"}, "at least 16"),
        ([], {"AUGREC_API_KEYS": "", "AUGREC_API_KEYS_FILE": str(tmp_path / "no")}, "cannot read"),
    ]
    for args, env, message in refusals:
        seen.clear()
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        assert run_cli("serve", *home, *args) == 2, args
        assert message in capsys.readouterr().err and not seen


def test_strict_readiness_reaches_the_service_from_the_flag_or_the_chart_variable(
    world, monkeypatch
):
    import os

    seen = {}
    monkeypatch.setattr(os, "execvpe", lambda exe, argv, env: seen.update(env=env))
    home = ["--home", str(world.home), "--grpc-port", "0"]
    assert run_cli("serve", *home, "--readiness-requires-store") == 0
    assert ServingConfig.from_env(seen["env"]).readiness_requires_store
    monkeypatch.setenv("AUGREC_READINESS_REQUIRES_STORE", "true")  # what the chart sets
    assert run_cli("serve", *home) == 0
    assert ServingConfig.from_env(seen["env"]).readiness_requires_store
