"""User ids in logs: a keyed hash, never the id itself.

A raw id in a log is personal data that outlives its retention rules; an unkeyed hash of a
small integer is no better (hash every id up to a billion and read it back). So a user is
logged as `user:<12 hex digits>`, a BLAKE2b hash keyed with `AUGREC_LOG_HASH_KEY`. Set that
variable (from a Secret) to follow one user across pods and restarts; unset, each process
draws a random key and its references only match within the process.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

LOG_KEY_ENV = "AUGREC_LOG_HASH_KEY"
_lock = threading.Lock()
_key: bytes | None = None


def _hash_key() -> bytes:
    global _key
    with _lock:
        if _key is None:
            configured = os.environ.get(LOG_KEY_ENV, "").encode()
            # BLAKE2b keys are at most 64 bytes; a longer secret is hashed down to one.
            _key = hashlib.sha512(configured).digest() if configured else os.urandom(32)
        return _key


def user_ref(user_id: int) -> str:
    """How a user appears in logs: `user:` and 12 hex digits of a keyed hash of the id."""
    digest = hashlib.blake2b(str(int(user_id)).encode(), key=_hash_key(), digest_size=6)
    return f"user:{digest.hexdigest()}"


def scrub(text: str, user_id: int) -> str:
    """`text` with every standalone occurrence of the id replaced by its `user_ref`.

    For messages we do not write ourselves (a store's exception may quote the entity key).
    """
    return re.sub(rf"(?<!\d){int(user_id)}(?!\d)", user_ref(user_id), text)
