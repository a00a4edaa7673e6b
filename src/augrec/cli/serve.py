"""`augrec serve`: the Bento (HTTP) and its gRPC server, locally, on a registered model."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from augrec.cli.common import Home
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
            help="A registered version (alias, tag, model name or version) or a run directory. "
            "Default: the [cyan]production[/] alias, else the newest registered version.",
            show_default=False,
        ),
    ] = None,
    http_port: Annotated[int, typer.Option("--http-port", help="HTTP port.")] = 3000,
    grpc_port: Annotated[
        int, typer.Option("--grpc-port", help="gRPC port (0: no gRPC server).")
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
            help="Batch concurrent scoring calls: on the Beauty SASRec, 2.3x the gRPC "
            "throughput at 32 clients (see docs/serving.md)."
        ),
    ] = True,
    torch_threads: Annotated[
        int, typer.Option("--torch-threads", min=1, help="torch threads for scoring.")
    ] = 1,
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
    """
    from augrec.serving.loading import describe, verify

    version, path = describe(model, home)  # fail here, clearly, before starting BentoML
    if not version.startswith("run:"):
        verify(version, home)  # a corrupted version never starts (docs/reliability.md)
    config = ServingConfig(
        # The resolved version, not the alias: a restarted worker serves the same model.
        model=str(path) if version.startswith("run:") else version,
        home=str(home) if home is not None else None,
        feature_repo=str(feature_repo.resolve()),
        feature_env=feature_env,
        grpc_host=host,
        grpc_port=grpc_port,
        batching=batching,
        torch_threads=torch_threads,
        readiness_requires_store=readiness_requires_store,
    )
    argv, env = serve_command(config, host, http_port)
    log.info("serving %s: HTTP on %s:%d, gRPC on port %d", version, host, http_port, grpc_port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(argv[0], argv, env)  # BentoML's process takes over (signals, exit code)
