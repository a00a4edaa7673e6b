"""The gRPC port, plain or over TLS (`--grpc-tls-cert/--grpc-tls-key`, optionally mutual).

With a certificate and key the port speaks only TLS; with `grpc_tls_client_ca` too, a client
must present a certificate that CA signed (mutual TLS). The files are read once, at start: a
missing or unreadable one stops the server with a message naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from augrec.errors import ConfigError

if TYPE_CHECKING:
    from augrec.serving.config import ServingConfig


def bind(server: grpc.Server, address: str, config: ServingConfig) -> int:
    """Add the listening port to `server`; returns the port (0: it could not bind)."""
    if config.grpc_tls_cert is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials(config))


def credentials(config: ServingConfig) -> grpc.ServerCredentials:
    """Server credentials from the configured PEM files."""
    cert = _read("AUGREC_GRPC_TLS_CERT", config.grpc_tls_cert)
    key = _read("AUGREC_GRPC_TLS_KEY", config.grpc_tls_key)
    ca = config.grpc_tls_client_ca
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=_read("AUGREC_GRPC_TLS_CLIENT_CA", ca) if ca else None,
        require_client_auth=ca is not None,
    )


def _read(var: str, path: str | None) -> bytes:
    try:
        data = Path(str(path)).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{var}: cannot read {path}: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{var}: {path} is not a PEM file")
    return data
