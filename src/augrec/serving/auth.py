"""Optional API keys: who may call the API, checked the same way on HTTP and gRPC.

Auth is on when `AUGREC_API_KEYS` (comma-separated keys) or `AUGREC_API_KEYS_FILE` (a file
of keys, one per line or comma-separated, `#` comments) is set, and off otherwise: an
unconfigured server answers everyone, as before. Clients send `Authorization: Bearer KEY`
(HTTP header, or gRPC metadata `authorization`).

- A presented key is compared with every configured key by `hmac.compare_digest` over
  SHA-256 digests, so the time taken depends neither on where a guess first differs nor on
  its length, nor on which key matched.
- A key is never logged or echoed: a client is named by `key_id` (the first 12 hex digits of
  the key's SHA-256), which is safe in logs and is what the rate limiter counts against.
- The file is re-read when it changes (checked at most every `RELOAD_S` seconds), so a
  Kubernetes Secret mounted as a volume rotates keys without a restart. A file that is
  missing or holds no key stops the server at start (a Secret with an empty key must not
  open the service); after start, a broken re-read keeps the last good keys and says why.
- Keys shorter than `MIN_KEY_LENGTH` are refused at start: `openssl rand -hex 32` makes one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from augrec.errors import ConfigError

log = logging.getLogger(__name__)
KEYS_ENV = "AUGREC_API_KEYS"
KEYS_FILE_ENV = "AUGREC_API_KEYS_FILE"
MIN_KEY_LENGTH = 16
RELOAD_S = 5.0
SCHEME = "bearer"


def key_id(key: str) -> str:
    """A name for a key that is safe to log: 12 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_keys(text: str, where: str) -> list[str]:
    """Keys from a comma- or newline-separated text (`#` starts a comment line)."""
    keys = []
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue
        for part in line.split(","):
            key = part.strip()
            if not key:
                continue
            if len(key) < MIN_KEY_LENGTH or not key.isascii() or not key.isprintable():
                # Say which key by its id only: the key itself must not reach a log.
                raise ConfigError(
                    f"{where}: key {key_id(key)} must be at least {MIN_KEY_LENGTH} printable "
                    "ASCII characters without spaces or commas (e.g. `openssl rand -hex 32`)"
                )
            if " " in key:
                raise ConfigError(f"{where}: key {key_id(key)} contains a space")
            keys.append(key)
    return keys


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one request's credentials."""

    ok: bool
    client: str | None = None  # `key:<key_id>` when a key matched
    reason: str = ""  # why not, for the client (never the key)


class ApiKeys:
    """The configured keys, or none (auth off); thread-safe, reloads its file on change."""

    def __init__(self, keys: list[str], path: Path | None = None, extra: list[str] | None = None):
        self._path = path
        self._extra = list(extra or [])  # from the variable, kept across file reloads
        self._lock = threading.Lock()
        self._digests: dict[bytes, str] = {}
        self._set(keys)
        self._mtime = self._stat()
        self._checked = time.monotonic()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiKeys:
        """Keys from `AUGREC_API_KEYS` and `AUGREC_API_KEYS_FILE` (both may be set: union).

        Raises:
            ConfigError: the file is missing or empty, or a key is too short.
        """
        environ = os.environ if environ is None else environ
        inline = parse_keys(environ.get(KEYS_ENV, ""), KEYS_ENV)
        file = environ.get(KEYS_FILE_ENV, "")
        if not file:
            return cls(inline)
        path = Path(file)
        keys = _read_file(path)
        if not keys:
            raise ConfigError(f"{KEYS_FILE_ENV}: {path} holds no key (auth would refuse everyone)")
        return cls(inline + keys, path=path, extra=inline)

    @property
    def enabled(self) -> bool:
        """Whether requests need a key."""
        return bool(self._digests) or self._path is not None

    def __len__(self) -> int:
        return len(self._digests)

    def check(self, authorization: str | None) -> Verdict:
        """Check an `Authorization` value (`Bearer KEY`); auth off: always ok."""
        if not self.enabled:
            return Verdict(True)
        self._maybe_reload()
        if not authorization:
            return Verdict(False, reason="missing; send `Authorization: Bearer <API key>`")
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != SCHEME or not presented.strip():
            return Verdict(False, reason="expected `Bearer <API key>`")
        digest = hashlib.sha256(presented.strip().encode("utf-8", "replace")).digest()
        match = None
        with self._lock:
            candidates = list(self._digests.items())
        for known, kid in candidates:  # no early exit: the time does not say which key
            if hmac.compare_digest(digest, known):
                match = kid
        if match is None:
            return Verdict(False, reason="API key not accepted")
        return Verdict(True, client=f"key:{match}")

    def _set(self, keys: list[str]) -> None:
        digests = {hashlib.sha256(k.encode()).digest(): key_id(k) for k in keys}
        with self._lock:
            self._digests = digests

    def _stat(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()  # follows the ..data symlink a mounted Secret swaps
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def _maybe_reload(self) -> None:
        if self._path is None or time.monotonic() - self._checked < RELOAD_S:
            return
        self._checked = time.monotonic()
        mtime = self._stat()
        if mtime == self._mtime:
            return
        try:
            keys = _read_file(self._path)
            if not keys:
                raise ConfigError(f"{self._path} holds no key")
        except ConfigError as exc:
            log.warning("API keys not reloaded, keeping the previous %d: %s", len(self), exc)
            return
        self._mtime = mtime
        self._set(self._extra + keys)
        log.info("API keys reloaded from %s: %d keys", self._path, len(self))


def _read_file(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{KEYS_FILE_ENV}: cannot read {path}: {exc.strerror}") from exc
    return parse_keys(text, f"{KEYS_FILE_ENV} ({path})")
