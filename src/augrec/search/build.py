"""Build a run's search index from the catalog it was trained on.

One definition for the pipeline's train step and `augrec search --build-from`.
The index is a file of the run directory (`rundir.SEARCH_INDEX`), so it is registered,
versioned and served with the model, and a model retrained on a changed catalog carries an
index of that catalog (the server refuses an index whose catalog fingerprint differs).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from augrec.data.schema import Dataset
from augrec.search.catalog import catalog_from_dataset
from augrec.search.index import SearchIndex, SearchParams

log = logging.getLogger("augrec")


def build_run_index(
    run: str | os.PathLike[str],
    ds: Dataset,
    item_ids: np.ndarray,
    attribute_names: dict[int, tuple[str, str]] | None = None,
    params: SearchParams | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path | None:
    """Index `ds`'s catalog for the model whose encoded-id map is `item_ids`, into `run`.

    Returns the index path, or None (and writes nothing) when no item has any text: a
    catalog of bare ids has nothing to search, and serving then answers /search with 404.
    """
    from augrec import rundir

    catalog = catalog_from_dataset(ds, item_ids, attribute_names)
    if not any(catalog.documents()):
        log.info("search index: the catalog has no titles, brands or categories; none built")
        return None
    index = SearchIndex.build(catalog, params, cache_dir=cache_dir)
    path = index.save(Path(run) / rundir.SEARCH_INDEX)
    log.info("search index: %d items -> %s", catalog.n_items, path)
    return path
