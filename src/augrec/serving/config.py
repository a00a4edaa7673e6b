"""How a server is configured: one typed object, carried to BentoML workers as variables.

`augrec serve` builds a `ServingConfig` from its options and hands it to `bentoml serve`
as environment variables (`to_env`); the service rebuilds it in each worker (`from_env`).
The same variables configure a container or a Kubernetes Deployment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    "torch_threads": "AUGREC_TORCH_THREADS",
    "max_request_bytes": "AUGREC_MAX_REQUEST_BYTES",
    "search_index": "AUGREC_SEARCH_INDEX",
    "readiness_requires_store": "AUGREC_READINESS_REQUIRES_STORE",
}
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
    grpc_workers: int = Field(16, ge=1, description="gRPC handler threads")
    batching: bool = Field(True, description="batch concurrent scoring (see docs/serving.md)")
    max_batch_size: int = Field(32, ge=1)
    torch_threads: int | None = Field(
        1, ge=1, description="torch threads per worker (None: torch's default, all cores)"
    )
    max_request_bytes: int = Field(64 * 1024, ge=1024, description="larger bodies get 413")
    search_index: str | None = Field(
        None, description="search index file; default: the model's search_index.zip, if any"
    )
    # Off by default: a store outage would otherwise pull every replica out of the Service
    # at once and turn a flagged fallback answer into no answer (docs/serving.md, Readiness).
    readiness_requires_store: bool = Field(
        False,
        description="strict readiness: /readyz also fails while the feature store does not "
        "answer; default: ready once the model is loaded",
    )

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
                if field in ("model", "home", "feature_repo", "torch_threads", "search_index"):
                    raw[field] = None
                continue
            raw[field] = value
        if environ.get(REGISTRY_ENV):
            raw["home"] = environ[REGISTRY_ENV]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            var = ENV.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else "?"
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
