"""`augrec serve`: the Bento (HTTP) and its gRPC server, locally, on a registered model."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from augrec.cli.common import Home
from augrec.errors import ConfigError
from augrec.serving.config import ServingConfig

log = logging.getLogger("augrec")
SERVICE = "augrec.services.service:AugrecService"


def serve_command(config: ServingConfig, host: str, http_port: int) -> tuple[list[str], dict]:
    """The `bentoml serve` command line and environment that run `config`."""
    argv = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host]
    argv += ["--port", str(http_port)]
    env = {**os.environ, **config.to_env()}
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    return argv, env


def serve(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            envvar="AUGREC_MODEL",
            help="A registered version (alias, tag, model name or version) or a run directory. "
            "Default: the [cyan]production[/] alias, else the newest registered version.",
            show_default=False,
        ),
    ] = None,
    http_port: Annotated[int, typer.Option("--http-port", help="HTTP port.")] = 3000,
    grpc_port: Annotated[
        int,
        typer.Option(
            "--grpc-port", envvar="AUGREC_GRPC_PORT", help="gRPC port (0: no gRPC server)."
        ),
    ] = 50051,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "0.0.0.0",
    feature_repo: Annotated[
        Path,
        typer.Option(
            "--feature-repo",
            help="Feast repo holding the online store.",
            envvar="AUGREC_FEATURE_REPO",
        ),
    ] = Path("feature_repo"),
    feature_env: Annotated[
        str,
        typer.Option(
            "--feature-env",
            help="Store environment: local (SQLite) or e.g. redis.",
            envvar="AUGREC_FEATURE_ENV",
        ),
    ] = "local",
    home: Home = None,
    batching: Annotated[
        bool,
        typer.Option(
            envvar="AUGREC_BATCHING",
            help="Batch concurrent scoring calls: on the Beauty SASRec, 2.3x the gRPC "
            "throughput at 32 clients (see docs/serving.md).",
        ),
    ] = True,
    torch_threads: Annotated[
        int,
        typer.Option(
            "--torch-threads",
            envvar="AUGREC_TORCH_THREADS",
            min=1,
            help="torch threads for scoring.",
        ),
    ] = 1,
    max_request_bytes: Annotated[
        int,
        typer.Option(
            "--max-request-bytes",
            envvar="AUGREC_MAX_REQUEST_BYTES",
            min=1024,
            help="Largest request: HTTP bodies over it get 413, gRPC messages RESOURCE_EXHAUSTED.",
        ),
    ] = 64 * 1024,
    rate_limit: Annotated[
        float,
        typer.Option(
            "--rate-limit",
            envvar="AUGREC_RATE_LIMIT",
            min=0,
            help="Requests per second per client (its API key, else its address), over HTTP "
            "and gRPC together; over it: 429 / RESOURCE_EXHAUSTED. 0: no limit.",
        ),
    ] = 0,
    rate_limit_burst: Annotated[
        int | None,
        typer.Option(
            "--rate-limit-burst",
            envvar="AUGREC_RATE_LIMIT_BURST",
            min=1,
            help="Requests a client may send at once. Default: one second's worth.",
            show_default=False,
        ),
    ] = None,
    grpc_tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--grpc-tls-cert",
            envvar="AUGREC_GRPC_TLS_CERT",
            help="PEM certificate (chain): serve gRPC over TLS only.",
        ),
    ] = None,
    grpc_tls_key: Annotated[
        Path | None,
        typer.Option(
            "--grpc-tls-key",
            envvar="AUGREC_GRPC_TLS_KEY",
            help="PEM private key of --grpc-tls-cert.",
        ),
    ] = None,
    grpc_tls_client_ca: Annotated[
        Path | None,
        typer.Option(
            "--grpc-tls-client-ca",
            envvar="AUGREC_GRPC_TLS_CLIENT_CA",
            help="PEM CA bundle: gRPC clients must present a certificate it signed (mutual TLS).",
        ),
    ] = None,
    readiness_requires_store: Annotated[
        bool,
        typer.Option(
            "--readiness-requires-store",
            envvar="AUGREC_READINESS_REQUIRES_STORE",
            help="Strict readiness: /readyz fails while the feature store does not answer. "
            "Default: ready once the model is loaded (answers fall back, flagged).",
        ),
    ] = False,
) -> None:
    """Serve recommendations over HTTP (BentoML) and gRPC from one process.

    HTTP: [cyan]POST /recommend /similar /events /search[/], [cyan]GET /readyz /status /metrics[/].
    gRPC: [cyan]augrec.v1.Recommender[/], the Open Inference Protocol (model
    [cyan]recommender[/]), health and reflection. See docs/serving.md.

    API keys: set [cyan]AUGREC_API_KEYS[/] (comma-separated) or [cyan]AUGREC_API_KEYS_FILE[/];
    clients then send [cyan]Authorization: Bearer KEY[/] (HTTP header, gRPC metadata).
    """
    from augrec.serving.auth import ApiKeys
    from augrec.serving.loading import describe, verify

    version, path = describe(model, home)  # fail here, clearly, before starting BentoML
    if not version.startswith("run:"):
        verify(version, home)  # a corrupted version never starts (docs/reliability.md)
    keys = ApiKeys.from_env()  # likewise a missing key file or a key too short to be one
    # Settings without an option here (AUGREC_MAX_BATCH_SIZE, AUGREC_BATCH_WAIT_MS, ...) keep
    # their variables' values: the chart and container images set them, and the options
    # above read theirs, so nothing set outside is overwritten by a default.
    base = ServingConfig.from_env().model_dump()
    try:
        options = dict(
            # The resolved version, not the alias: a restarted worker serves the same model.
            model=str(path) if version.startswith("run:") else version,
            home=str(home) if home is not None else None,
            feature_repo=str(feature_repo.resolve()),
            feature_env=feature_env,
            grpc_host=host,
            grpc_port=grpc_port,
            batching=batching,
            torch_threads=torch_threads,
            max_request_bytes=max_request_bytes,
            rate_limit=rate_limit,
            rate_limit_burst=rate_limit_burst,
            grpc_tls_cert=_path(grpc_tls_cert),
            grpc_tls_key=_path(grpc_tls_key),
            grpc_tls_client_ca=_path(grpc_tls_client_ca),
            readiness_requires_store=readiness_requires_store,
        )
        config = ServingConfig(**{**base, **options})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = "".join(f"--{str(p).replace('_', '-')}: " for p in err["loc"][:1])
        raise ConfigError(where + err["msg"].removeprefix("Value error, ")) from exc
    if config.grpc_tls_cert is not None:
        from augrec.services.grpc_tls import credentials

        credentials(config)  # unreadable or not PEM: say so now, not from inside a worker
    argv, env = serve_command(config, host, http_port)
    log.info(
        "serving %s: HTTP on %s:%d, gRPC on port %d%s; API keys: %s; rate limit: %s",
        version,
        host,
        http_port,
        grpc_port,
        " (TLS)" if config.grpc_tls_cert else "",
        f"{len(keys)} (auth on)" if keys.enabled else "none (auth off)",
        f"{rate_limit:g}/s per client" if rate_limit else "off",
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)  # BentoML's process takes over (signals, exit code)


def _path(path: Path | None) -> str | None:
    """An absolute path for the workers (they may start elsewhere), or None."""
    return None if path is None else str(path.resolve())
