"""How a server is configured: one typed object, carried to BentoML workers as variables.

`augrec serve` builds a `ServingConfig` from its options and hands it to `bentoml serve`
as environment variables (`to_env`); the service rebuilds it in each worker (`from_env`).
The same variables configure a container or a Kubernetes Deployment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from augrec.errors import ConfigError

# field -> environment variable. The feature variables are the ones `augrec features` reads.
ENV = {
    "model": "AUGREC_MODEL",
    "home": "BENTOML_HOME",
    "feature_repo": "AUGREC_FEATURE_REPO",
    "feature_env": "AUGREC_FEATURE_ENV",
    "grpc_host": "AUGREC_GRPC_HOST",
    "grpc_port": "AUGREC_GRPC_PORT",
    "grpc_workers": "AUGREC_GRPC_WORKERS",
    "batching": "AUGREC_BATCHING",
    "max_batch_size": "AUGREC_MAX_BATCH_SIZE",
    "batch_wait_ms": "AUGREC_BATCH_WAIT_MS",
    "batch_fill_ms": "AUGREC_BATCH_FILL_MS",
    "torch_threads": "AUGREC_TORCH_THREADS",
    "torchscript": "AUGREC_TORCHSCRIPT",
    "max_request_bytes": "AUGREC_MAX_REQUEST_BYTES",
    "search_index": "AUGREC_SEARCH_INDEX",
    # Hostile input and access (docs/serving.md, "Access control and limits"). API keys are
    # not here: they are secrets, read by augrec.serving.auth from their own variables.
    "rate_limit": "AUGREC_RATE_LIMIT",
    "rate_limit_burst": "AUGREC_RATE_LIMIT_BURST",
    "grpc_tls_cert": "AUGREC_GRPC_TLS_CERT",
    "grpc_tls_key": "AUGREC_GRPC_TLS_KEY",
    "grpc_tls_client_ca": "AUGREC_GRPC_TLS_CLIENT_CA",
    "readiness_requires_store": "AUGREC_READINESS_REQUIRES_STORE",
}
# Fields an empty variable sets to None (the others: empty means the default).
NULLABLE = (
    "model",
    "home",
    "feature_repo",
    "torch_threads",
    "search_index",
    "rate_limit_burst",
    "grpc_tls_cert",
    "grpc_tls_key",
    "grpc_tls_client_ca",
)
# A registry on object storage travels in its own variable: BENTOML_HOME must stay a local
# folder, since BentoML itself reads it in every process it starts.
REGISTRY_ENV = "AUGREC_REGISTRY"


class ServingConfig(BaseModel):
    """Everything a serving process needs to start."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(
        None,
        description="registered version (alias, tag, name or version) or run directory; "
        "default: the `production` alias, else the newest registered version",
    )
    home: str | None = Field(
        None, description="the registry: a BentoML home, or a URI such as s3://bucket/registry"
    )
    feature_repo: str | None = Field("feature_repo", description="Feast repo; empty: none")
    feature_env: str = Field("local", description="feature_store.<env>.yaml to use")
    grpc_host: str = "0.0.0.0"
    grpc_port: int = Field(50051, ge=0, le=65535, description="0: no gRPC server")
    grpc_workers: int = Field(
        16, ge=1, description="threads for the gRPC methods other than Recommend"
    )
    batching: bool = Field(True, description="batch concurrent scoring (see docs/serving.md)")
    max_batch_size: int = Field(32, ge=1)
    batch_wait_ms: float = Field(
        0.0, ge=0, le=1000, description="how long a batch waits to grow (0: never waits)"
    )
    # 8 ms: on the Beauty SASRec, gRPC at 8 clients 263 -> 382 req/s, one client unchanged
    # (docs/benchmarks.md, "The batched request path").
    batch_fill_ms: float = Field(
        8.0,
        ge=0,
        le=1000,
        description="how long a batch waits while smaller than the one before it (0: never)",
    )
    torch_threads: int | None = Field(
        1, ge=1, description="torch threads per worker (None: torch's default, all cores)"
    )
    torchscript: bool = Field(
        True,
        description="run the model's encoder as a frozen TorchScript graph where it has one "
        "(SASRec: ~2x less time per call; scores within 1e-5 of eager)",
    )
    max_request_bytes: int = Field(64 * 1024, ge=1024, description="larger bodies get 413")
    search_index: str | None = Field(
        None, description="search index file; default: the model's search_index.zip, if any"
    )
    rate_limit: float = Field(
        0, ge=0, description="requests per second per client (API key, else address); 0: off"
    )
    rate_limit_burst: int | None = Field(
        None, ge=1, description="requests a client may send at once; default: one second's"
    )
    grpc_tls_cert: str | None = Field(None, description="PEM certificate chain: gRPC over TLS")
    grpc_tls_key: str | None = Field(None, description="PEM private key of grpc_tls_cert")
    grpc_tls_client_ca: str | None = Field(
        None, description="PEM CA bundle: gRPC clients must present a certificate it signed"
    )

    # Off by default: a store outage would otherwise pull every replica out of the Service
    # at once and turn a flagged fallback answer into no answer (docs/serving.md, Readiness).
    readiness_requires_store: bool = Field(
        False,
        description="strict readiness: /readyz also fails while the feature store does not "
        "answer; default: ready once the model is loaded",
    )

    @model_validator(mode="after")
    def _tls_pairs(self) -> ServingConfig:
        if (self.grpc_tls_cert is None) != (self.grpc_tls_key is None):
            raise ValueError(
                "AUGREC_GRPC_TLS_CERT and AUGREC_GRPC_TLS_KEY (--grpc-tls-cert, --grpc-tls-key) "
                "go together: set both or neither"
            )
        if self.grpc_tls_client_ca is not None and self.grpc_tls_cert is None:
            raise ValueError(
                "AUGREC_GRPC_TLS_CLIENT_CA (--grpc-tls-client-ca) needs a server certificate "
                "and key (AUGREC_GRPC_TLS_CERT, AUGREC_GRPC_TLS_KEY)"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingConfig:
        """Read the variables in `ENV` (unset or empty: the default; empty repo: none)."""
        environ = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for field, var in ENV.items():
            value = environ.get(var)
            if value is None:
                continue
            if value == "":
                if field in NULLABLE:
                    raw[field] = None
                continue
            raw[field] = value
        if environ.get(REGISTRY_ENV):
            raw["home"] = environ[REGISTRY_ENV]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            if not err["loc"]:  # a rule across fields; its message names them
                raise ConfigError(err["msg"].removeprefix("Value error, ")) from exc
            var = ENV.get(str(err["loc"][0]), str(err["loc"][0]))
            raise ConfigError(f"{var}: {err['msg']} (got {err.get('input')!r})") from exc

    def to_env(self) -> dict[str, str]:
        """The variables that make `from_env` rebuild this config (None becomes empty)."""
        out = {}
        for field, var in ENV.items():
            value = getattr(self, field)
            if field == "home" and value is not None and "://" in value:
                out[REGISTRY_ENV] = value
                continue
            if value is None and field == "home":
                continue  # BentoML's own default; an empty BENTOML_HOME would mean the cwd
            if isinstance(value, bool):
                value = str(value).lower()
            out[var] = "" if value is None else str(value)
        return out
