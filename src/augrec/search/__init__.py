"""Personalized product search: BM25 + packaged-encoder retrieval, fused, re-ranked per user.

- `catalog`: each item's searchable text (title, brand, category path), aligned with a
  model's encoded ids, and the catalog fingerprint;
- `index`: the `SearchIndex` (BM25 via `bm25s`, item text embeddings, the tuned weights),
  saved as files and refused at load when its catalog is not the model's;
- `rank`: fusion (weighted reciprocal-rank fusion) and personalization (adding the user's
  sequential-model score to the candidates), as batch functions on full score matrices.
"""
