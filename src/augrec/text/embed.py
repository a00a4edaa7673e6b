"""Item text embeddings from a pretrained encoder that ships inside its PyPI package.

The encoder is WordLlama (`wordllama` on PyPI, model `l2_supercat`, 256-d): static token
embeddings distilled from LLaMA-2's embedding table, average-pooled per text. Its weights and
tokenizer are files inside the wheel, loaded with `disable_download=True`, so embedding never
touches the network (a test runs it with sockets disabled). About a second for 12k titles on
one CPU core.

Embeddings are cached by a content hash of (encoder name, dimension, texts), one `.npy` per
distinct input under the cache directory, so a second call with the same catalog is a file
read. The encoder is deterministic (a table lookup and a mean), and so is the cache.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

ENCODER = "wordllama/l2_supercat"
DIM = 256
CACHE_ENV = "AUGREC_CACHE_DIR"


def default_cache_dir() -> Path:
    """`$AUGREC_CACHE_DIR/text`, else `~/.cache/augrec/text`."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root) if root else Path.home() / ".cache" / "augrec"
    return base / "text"


def content_key(texts: Sequence[str], encoder: str = ENCODER, dim: int = DIM) -> str:
    """SHA-256 of the encoder name, dimension and every text (length-prefixed, so unambiguous)."""
    h = hashlib.sha256(f"{encoder}\0{dim}\0{len(texts)}\0".encode())
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


@lru_cache(maxsize=1)
def _encoder(dim: int = DIM):
    """The packaged WordLlama model, loaded from the installed wheel's own files."""
    import wordllama

    return wordllama.WordLlama.load(
        config="l2_supercat",
        dim=dim,
        cache_dir=Path(wordllama.__file__).parent,
        disable_download=True,
    )


def encode(texts: Sequence[str], dim: int = DIM) -> np.ndarray:
    """Embed `texts` without a cache: [len(texts), dim] float32, rows L2-normalised.

    An empty text embeds to the zero vector (it is similar to nothing).
    """
    texts = [str(t) for t in texts]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    nonempty = [i for i, t in enumerate(texts) if t.strip()]
    if nonempty:
        vecs = _encoder(dim).embed([texts[i] for i in nonempty], norm=False)
        vecs = np.asarray(vecs, dtype=np.float32)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        out[nonempty] = np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
    return out


def embed_texts(
    texts: Sequence[str], cache_dir: str | os.PathLike[str] | None = None, dim: int = DIM
) -> np.ndarray:
    """Embed `texts` through the content-hash cache (see the module docstring).

    Args:
        texts: One string per row (e.g. one item title per encoded item id).
        cache_dir: Where cached arrays live; default `default_cache_dir()`.
        dim: Encoder dimension (WordLlama offers 64..4096; 256 is the packaged one).

    Returns:
        [len(texts), dim] float32, L2-normalised rows (zero rows for empty texts).
    """
    texts = [str(t) for t in texts]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / f"{content_key(texts, dim=dim)}.npy"
    if path.exists():
        return np.load(path)
    vecs = encode(texts, dim)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        np.save(fh, vecs)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the whole array or none
    return vecs
