"""The search index: BM25 and item embeddings over a catalog, its weights, saved as a file.

An index file (`SearchIndex.save`, read back by `SearchIndex.load`) is one zip archive, so a
run directory and the model registry carry it like any other run file
(`rundir.SEARCH_INDEX`):

    index.json        format, encoder, tokenizer, catalog fingerprint, item count, weights
    catalog.parquet   item_id, title, brand, categories per encoded id (row 0: padding)
    embeddings.npy    [n_items + 1, dim] float32 item text embeddings (row 0: zeros)

The BM25 matrices are rebuilt from `catalog.parquet` at load (`bm25s` indexes 12k titles
in about a second, deterministically), so the archive holds nothing derived twice.

The index belongs to one catalog: the model's encoded-id -> item-id map. Its fingerprint is
stored at build time and compared at load time with the serving model's, and a mismatch is
refused (`IndexMismatch`): a BM25 row or an embedding read under another numbering would
silently return the wrong products.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from augrec.errors import ConfigError
from augrec.search import rank
from augrec.search.catalog import CatalogText, fingerprint
from augrec.text import embed

FORMAT = 1
INDEX_JSON = "index.json"
CATALOG = "catalog.parquet"
EMBEDDINGS = "embeddings.npy"
STOPWORDS = "en"
STEMMER = "english"


class IndexMismatch(ConfigError):
    """The index was built for another catalog than the model's."""


class SearchParams(BaseModel):
    """How lexical, semantic and the user's model combine (chosen on validation).

    The defaults are what validation chose on Amazon Beauty for both seeds measured
    (`benchmarks/search.py`, docs/benchmarks.md "Search on Amazon Beauty"); another catalog
    should choose its own with that script and `augrec search --params-from`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(0.95, ge=0, le=1, description="lexical share of the fusion")
    rrf_k: int = Field(10, ge=1, description="reciprocal-rank fusion constant")
    personalization: float = Field(
        0.75, ge=0, description="weight of the user's standardised model score"
    )
    depth: int = Field(100, ge=1, description="fused candidates the model re-ranks")


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer(STEMMER)


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop-worded, Snowball-stemmed tokens (the index and queries alike)."""
    import bm25s

    return bm25s.tokenize(
        texts, stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False
    )


class SearchIndex:
    """BM25 + embeddings over one catalog, and the weights that fuse them."""

    def __init__(self, catalog: CatalogText, bm25, embeddings: np.ndarray, params: SearchParams):
        self.catalog = catalog
        self.bm25 = bm25
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.params = params
        self.fingerprint = fingerprint(catalog.item_ids)
        self._has_text = torch.from_numpy(np.abs(self.embeddings).sum(axis=1) > 0)

    @property
    def n_items(self) -> int:
        """Catalog size (encoded ids 1..n_items)."""
        return self.catalog.n_items

    @classmethod
    def build(
        cls,
        catalog: CatalogText,
        params: SearchParams | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> SearchIndex:
        """Index every item's title, brand and category names (row 0, padding, is empty)."""
        import bm25s

        docs = catalog.documents()
        tokens = tokenize(docs)
        # bm25s ranks documents by position: keep one (possibly empty) document per id.
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        vecs = embed.embed_texts(docs, cache_dir=cache_dir)
        return cls(catalog, retriever, vecs, params or SearchParams())

    def with_params(self, params: SearchParams) -> SearchIndex:
        """The same index with other weights (e.g. those chosen on validation)."""
        return SearchIndex(self.catalog, self.bm25, self.embeddings, params)

    # ---- scoring -------------------------------------------------------------------------

    def lexical(self, queries: list[str]) -> torch.Tensor:
        """[Q, N+1] BM25 scores of every item per query (0: no query term matches)."""
        out = np.zeros((len(queries), self.n_items + 1), dtype=np.float32)
        for row, toks in enumerate(tokenize(list(queries))):
            if toks:
                out[row] = self.bm25.get_scores(toks)
        out[:, 0] = 0.0
        return torch.from_numpy(out)

    def semantic(self, queries: list[str]) -> torch.Tensor:
        """[Q, N+1] cosine similarity of the query's and each item's embedding."""
        return torch.from_numpy(embed.encode(list(queries)) @ self.embeddings.T)

    def fused(self, queries: list[str], params: SearchParams | None = None) -> torch.Tensor:
        """[Q, N+1] reciprocal-rank fusion of `lexical` and `semantic` (see `rank.rrf`)."""
        p = params or self.params
        return rank.rrf(
            self.lexical(queries), self.semantic(queries), p.alpha, p.rrf_k, self._has_text
        )

    def score(
        self,
        queries: list[str],
        model_scores: torch.Tensor | None = None,
        params: SearchParams | None = None,
    ) -> torch.Tensor:
        """[Q, N+1] final search scores; personalised when `model_scores` [Q, N+1] is given."""
        p = params or self.params
        fused = self.fused(queries, p)
        if model_scores is None or p.personalization == 0:
            return fused
        return rank.personalize(fused, model_scores, p.personalization, p.depth)

    # ---- files ---------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the index file atomically (see the module docstring)."""
        import io
        import zipfile

        path = Path(path)
        meta = {
            "format": FORMAT,
            "catalog_fingerprint": self.fingerprint,
            "n_items": self.n_items,
            "encoder": embed.ENCODER,
            "dim": int(self.embeddings.shape[1]),
            "tokenizer": {"stopwords": STOPWORDS, "stemmer": STEMMER},
            "params": self.params.model_dump(),
        }
        catalog, vecs = io.BytesIO(), io.BytesIO()
        self.catalog.frame().to_parquet(catalog, index=False)
        np.save(vecs, self.embeddings)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(INDEX_JSON, json.dumps(meta, indent=2))
            zf.writestr(CATALOG, catalog.getvalue())
            zf.writestr(EMBEDDINGS, vecs.getvalue())
        os.replace(tmp, path)
        return path

    @staticmethod
    def read_meta(path: str | os.PathLike[str]) -> dict:
        """The index's `index.json`; a clear error when the file is not a search index."""
        import zipfile

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"search index: no such file: {path}")
        try:
            with zipfile.ZipFile(path) as zf:
                return json.loads(zf.read(INDEX_JSON))
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ConfigError(f"{path}: not a search index ({exc})") from exc

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], expected_item_ids: np.ndarray | None = None
    ) -> SearchIndex:
        """Read an index file; refuse it when its catalog is not `expected_item_ids`.

        Raises:
            IndexMismatch: the stored fingerprint differs from that of `expected_item_ids`
                (the model's catalog), or the stored catalog disagrees with the fingerprint.
        """
        import io
        import zipfile

        import bm25s
        import pandas as pd

        path = Path(path)
        meta = cls.read_meta(path)
        if meta.get("format") != FORMAT:
            raise ConfigError(f"{path}: search index format {meta.get('format')}, need {FORMAT}")
        if expected_item_ids is not None:
            want = fingerprint(expected_item_ids)
            if meta["catalog_fingerprint"] != want:
                raise IndexMismatch(
                    f"{path}: the search index was built for catalog "
                    f"{meta['catalog_fingerprint'][:19]}… ({meta['n_items']} items), the model's "
                    f"catalog is {want[:19]}… ({len(expected_item_ids) - 1} items); rebuild it "
                    "with `augrec search --model RUN --build-from DATA`"
                )
        with zipfile.ZipFile(path) as zf:
            catalog = CatalogText.from_frame(pd.read_parquet(io.BytesIO(zf.read(CATALOG))))
            embeddings = np.load(io.BytesIO(zf.read(EMBEDDINGS)))
        if fingerprint(catalog.item_ids) != meta["catalog_fingerprint"]:
            raise IndexMismatch(f"{path}: {CATALOG} does not match the index's fingerprint")
        retriever = bm25s.BM25()
        retriever.index(tokenize(catalog.documents()), show_progress=False)
        return cls(catalog, retriever, embeddings, SearchParams(**meta["params"]))
