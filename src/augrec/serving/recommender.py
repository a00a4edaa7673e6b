"""The serving object: one per process, shared by the Bento (HTTP) and the gRPC servicers.

A request names a user; the user's history comes from the Feast online store (plus any
recent items the client sends), the model scores every item, seen items and other
categories are masked, and the top k come back with the model version. Requests the model
cannot personalise get the popularity fallback, flagged:

- no usable history (unknown user, empty history, or only items the model never saw):
  `fallback_reason: empty_history`;
- the store cannot be read: the model scores the client's recent items if any, else
  popularity, and either way `fallback_reason: feature_store_unavailable`.

Popularity is the online `item_popularity.events_total` of each catalog item, read once at
start; without a store it is the model's own (`models.base.Recommender.popularity`: training
counts for the popularity and item-kNN models, the learnt prior for SASRec). Either way a popularity
answer scores each item relative to the most popular one: 1.0 is the top item, 0.5 half as
popular.

Search (`search`) ranks the catalog for a query with the model's search index (BM25 +
packaged-encoder embeddings, fused; `augrec.search`), re-ranked by the user's model score
when a user with history is named; anonymous shoppers get the unpersonalised ranking,
flagged `fallback_reason: anonymous`. The index is the run's `search_index.zip` (or
`AUGREC_SEARCH_INDEX`); one built for another catalog stops the server at start.

Ids in requests and responses are the catalog's own; the model works on encoded ids.

Two paths answer `recommend`, with the same answers (tested on a Beauty-sized SASRec):
`recommend_one`, the reference, one request at a time, written to be read; and
`recommend_batch`, the fast path, which answers many requests with one feature-store read,
one model call, one masking step and one top-k. With batching on (the default), concurrent
requests reach `recommend_batch` through a `Batcher`; off, each takes `recommend_one`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from augrec.evaluation.ranking import topk_stable
from augrec.serving import schemas as s
from augrec.serving.errors import InvalidRequest, NotFound, RequestError, Unavailable

if TYPE_CHECKING:
    from augrec.search.index import SearchIndex
    from augrec.serving.batching import BatchPolicy
    from augrec.serving.config import ServingConfig
    from augrec.serving.loading import LoadedModel
    from augrec.serving.online import OnlineFeatures

log = logging.getLogger(__name__)


class ServingRecommender:
    """Answers recommend, similar-items and event requests for one loaded model."""

    def __init__(
        self,
        loaded: LoadedModel,
        features: OnlineFeatures,
        batching: BatchPolicy | None = None,
        search_index: SearchIndex | None = None,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.loaded = loaded
        self.model = loaded.model
        self.version = loaded.version
        self.features = features
        self._on_batch = on_batch  # called with the number of histories each model call scores
        item_ids = np.asarray(loaded.item_ids, dtype=np.int64)
        self.item_ids = item_ids
        self.n_items = len(item_ids) - 1
        # original id -> encoded id (index 0 is padding, never a catalog item)
        self._codes = {int(orig): enc for enc, orig in enumerate(item_ids) if enc > 0}
        # The same map as sorted arrays: a whole history is encoded with one searchsorted.
        order = np.argsort(item_ids[1:], kind="stable")
        self._sorted_ids = item_ids[1:][order]
        self._sorted_codes = order.astype(np.int64) + 1
        self.categories: dict[str, np.ndarray] | None = None  # category -> [N] bool mask
        self._category_drops: dict[str, torch.Tensor] = {}  # category -> [N] bool, True: drop
        self.popularity, self.popularity_source = self._load_catalog()
        self.contract, self.contract_problems = self._check_contract()
        self.search_index = search_index
        self._search_filters: dict[str, dict[str, np.ndarray]] | None = None
        self._batcher = None
        if batching is not None:
            from augrec.serving.batching import Batcher

            self._batcher = Batcher(self.recommend_batch, batching, name="augrec-recommend")

    @classmethod
    def load(cls, config: ServingConfig, on_batch=None) -> ServingRecommender:
        """Load the configured model and open the feature store (which may be unavailable)."""
        from augrec.serving.loading import load
        from augrec.serving.online import OnlineFeatures

        if config.torch_threads is not None:
            torch.set_num_threads(config.torch_threads)
        t0 = time.perf_counter()
        loaded = load(config.model, config.home)
        graph = config.torchscript and loaded.model.prepare_for_serving()
        features = OnlineFeatures.open(config.feature_repo, config.feature_env)
        batching = None
        if config.batching:
            from augrec.serving.batching import BatchPolicy

            batching = BatchPolicy(
                config.max_batch_size, config.batch_wait_ms / 1000, config.batch_fill_ms / 1000
            )
        rec = cls(loaded, features, batching, load_search_index(config, loaded), on_batch)
        rec.require_store = config.readiness_requires_store
        log.info(
            "serving %s (%s%s, %d items) in %.1f s; feature store: %s",
            rec.version,
            loaded.model.name,
            ", TorchScript" if graph else "",
            rec.n_items,
            time.perf_counter() - t0,
            "ok" if features.client is not None else "unavailable (see the warning above)",
        )
        return rec

    def close(self) -> None:
        """Stop the batching thread, if any."""
        if self._batcher is not None:
            self._batcher.close()

    # ---- requests ----------------------------------------------------------------------

    def recommend(self, req: s.RecommendRequest) -> s.RecommendResponse:
        """Top-k items for a user: batched with concurrent requests when batching is on."""
        if self._batcher is not None:
            return self._batcher(req)
        return self.recommend_one(req)

    async def recommend_async(self, req: s.RecommendRequest) -> s.RecommendResponse:
        """`recommend` for an event loop: awaits the batch, or runs in a thread without one."""
        if self._batcher is not None:
            return await asyncio.wrap_future(self._batcher.submit(req))
        return await asyncio.to_thread(self.recommend_one, req)

    def recommend_one(self, req: s.RecommendRequest) -> s.RecommendResponse:
        """Top-k items for a user (see the module docstring for the fallback rules).

        The reference path: `recommend_batch` must give exactly these answers.
        """
        stored = self.features.history(req.user_id)
        reason: s.FallbackReason | None = None
        if stored is None:
            reason, stored = "feature_store_unavailable", np.zeros(0, dtype=np.int64)
        history = self.encode([*stored.tolist(), *(req.recent_items or [])])
        if len(history):
            scores = self._score(history)
        else:
            reason = reason or "empty_history"
            scores = self.popularity.clone()
        scores[0] = -torch.inf
        if req.exclude_seen and len(history):
            scores[torch.from_numpy(history)] = -torch.inf
        if req.category is not None:
            scores[~torch.from_numpy(self._category_mask(req.category))] = -torch.inf
        return s.RecommendResponse(
            items=self._top(scores, req.k),
            model_version=self.version,
            fallback=reason is not None,
            fallback_reason=reason,
        )

    def recommend_batch(
        self, reqs: Sequence[s.RecommendRequest]
    ) -> list[s.RecommendResponse | RequestError]:
        """`recommend_one` for many requests at once: one store read, model call and top-k.

        A request that `recommend_one` refuses (an unknown category) gets its error in its
        place in the list; the others are answered.
        """
        out: list[s.RecommendResponse | RequestError] = [None] * len(reqs)  # type: ignore[list-item]
        stored = self.features.histories([r.user_id for r in reqs])
        store_reason: s.FallbackReason | None = None
        if stored is None:
            store_reason = "feature_store_unavailable"
        rows: list[int] = []  # the requests answered below, in order
        drops: list[torch.Tensor | None] = []  # per row: the items its category leaves out
        histories: list[np.ndarray] = []
        for i, req in enumerate(reqs):
            try:
                drop = None if req.category is None else self._category_drop(req.category)
            except RequestError as exc:
                out[i] = exc
                continue
            items = stored[i] if stored is not None else np.zeros(0, dtype=np.int64)
            if req.recent_items:
                items = np.concatenate([items, np.asarray(req.recent_items, dtype=np.int64)])
            rows.append(i)
            drops.append(drop)
            histories.append(self.encode_array(items))
        if not rows:
            return out
        personal = [j for j, h in enumerate(histories) if len(h)]
        if len(personal) == len(rows):
            scores = self._score_batch(histories)  # [B, N]
        else:
            scores = self.popularity.expand(len(rows), -1).clone()
            if personal:
                scores[personal] = self._score_batch([histories[j] for j in personal])
        scores[:, 0] = -torch.inf
        seen = [j for j in personal if reqs[rows[j]].exclude_seen]
        if seen:
            r = np.repeat(np.asarray(seen, dtype=np.int64), [len(histories[j]) for j in seen])
            c = np.concatenate([histories[j] for j in seen])
            scores[torch.from_numpy(r), torch.from_numpy(c)] = -torch.inf
        for j, drop in enumerate(drops):
            if drop is not None:
                scores[j].masked_fill_(drop, -torch.inf)
        ks = [reqs[i].k for i in rows]
        # The first k of a stable top-max(k) are the stable top-k: one top-k serves every row.
        idx, vals = topk_stable(scores, max(ks))
        finite = np.isfinite(vals)
        for j, i in enumerate(rows):
            k = ks[j]
            keep = finite[j, :k]
            ids = self.item_ids[idx[j, :k][keep]].tolist()
            values = vals[j, :k][keep].tolist()
            reason = store_reason if len(histories[j]) else (store_reason or "empty_history")
            out[i] = s.RecommendResponse(
                items=[s.ScoredItem(item_id=a, score=b) for a, b in zip(ids, values, strict=True)],
                model_version=self.version,
                fallback=reason is not None,
                fallback_reason=reason,
            )
        return out

    def similar(self, req: s.SimilarRequest) -> s.SimilarResponse:
        """Items most like `item_id` by the model's item representation.

        Popularity has none, and an item-kNN item may have no neighbour: both answer with
        popular items, flagged `no_item_representation`.
        """
        code = self._codes.get(req.item_id)
        if code is None:
            raise NotFound("item_id", f"item {req.item_id} is not in the model's catalog")
        sims = self.model.item_similarity(np.asarray([code]))
        items: list[s.ScoredItem] = []
        if sims is not None:
            row = sims[0].clone()
            row[code] = -torch.inf
            items = self._top(row, req.k)
        if items:
            return s.SimilarResponse(
                item_id=req.item_id, items=items, model_version=self.version, fallback=False
            )
        row = self.popularity.clone()
        row[0] = row[code] = -torch.inf
        return s.SimilarResponse(
            item_id=req.item_id,
            items=self._top(row, req.k),
            model_version=self.version,
            fallback=True,
            fallback_reason="no_item_representation",
        )

    def search(self, req: s.SearchRequest) -> s.SearchResponse:
        """Items matching `req.query`, personalised for `req.user_id` (see the module doc)."""
        from augrec.search import rank

        index = self.search_index
        if index is None:
            raise Unavailable(
                "query",
                f"model {self.version} has no search index; build one with "
                "`augrec search --model RUN --build-from DATA` (or set AUGREC_SEARCH_INDEX)",
            )
        scores = index.fused([req.query])
        reason: s.FallbackReason | None = None
        personalized = False
        if req.user_id is None:
            reason = "anonymous"
        else:
            stored = self.features.history(req.user_id)
            if stored is None:
                reason, stored = "feature_store_unavailable", np.zeros(0, dtype=np.int64)
            history = self.encode(stored.tolist())
            if not len(history):
                reason = reason or "empty_history"
            elif index.params.personalization > 0:
                p = index.params
                model = self._score(history)[None, :]
                scores = rank.personalize(scores, model, p.personalization, p.depth)
                personalized = True
        scores = scores[0]
        if req.filters is not None:
            for name in ("category", "brand"):
                value = getattr(req.filters, name)
                if value is not None:
                    scores[~torch.from_numpy(self._search_mask(name, value))] = -torch.inf
        return s.SearchResponse(
            items=self._top(scores, req.k),
            model_version=self.version,
            personalized=personalized,
            fallback=reason is not None,
            fallback_reason=reason,
        )

    def push_event(self, req: s.EventRequest) -> s.EventResponse:
        """Fold a live event into the user's online features (the next recommend sees it).

        Items outside the model's catalog are stored too: the next training run learns them.
        The event type is accepted for the log; the history features count every type.
        """
        timestamp = req.timestamp if req.timestamp is not None else int(time.time())
        changed = self.features.push(req.user_id, req.item_id, timestamp)
        return s.EventResponse(accepted=True, changed=changed)

    # Strict readiness (ServingConfig.readiness_requires_store): also need the store to answer.
    require_store = False

    def ready(self) -> bool:
        """Can this process answer? By default no store read: the model is loaded, so yes.

        A contract mismatch is a deploy error and never ready; strict readiness probes the store.
        """
        if self.require_store:
            return self.health().ready
        return self.contract != "mismatch"

    def health(self) -> s.Health:
        """Readiness explained: the model, the store (probed now), the feature contract."""
        store_ok = self.features.probe()
        problems = list(self.contract_problems)
        if not store_ok:
            problems.append(f"feature store unavailable: {self.features.error}")
        if self.require_store:
            ready = store_ok and self.contract in ("ok", "not_recorded")
        else:
            ready = self.contract != "mismatch"
        return s.Health(
            ready=ready,
            model_version=self.version,
            model=self.model.name,
            feature_store="ok" if store_ok else "unavailable",
            contract=self.contract,
            readiness="model_and_store" if self.require_store else "model",
            degraded=not store_ok,
            problems=problems,
        )

    # ---- helpers -----------------------------------------------------------------------

    def encode(self, items: Sequence[int]) -> np.ndarray:
        """Encoded ids of the items the model knows, in order (others are skipped)."""
        codes = [self._codes.get(int(i)) for i in items]
        return np.asarray([c for c in codes if c is not None], dtype=np.int64)

    def encode_array(self, items: np.ndarray) -> np.ndarray:
        """`encode` of an int64 array, vectorised."""
        if not len(items) or not len(self._sorted_ids):
            return np.zeros(0, dtype=np.int64)
        at = np.searchsorted(self._sorted_ids, items).clip(max=len(self._sorted_ids) - 1)
        known = self._sorted_ids[at] == items
        return self._sorted_codes[at[known]]

    def _score(self, history: np.ndarray) -> torch.Tensor:
        """Model scores of every item for one encoded history, [n_items + 1], ours to modify."""
        return self.model.score([history])[0]

    def _score_batch(self, histories: list[np.ndarray]) -> torch.Tensor:
        """Model scores of every item for each history, [B, n_items + 1], ours to modify."""
        scores = self.model.score(histories)
        if self._on_batch is not None:
            self._on_batch(len(histories))
        return scores

    def _top(self, scores: torch.Tensor, k: int) -> list[s.ScoredItem]:
        idx, vals = topk_stable(scores[None, :], k)
        keep = np.isfinite(vals[0])
        return [
            s.ScoredItem(item_id=int(self.item_ids[i]), score=float(v))
            for i, v in zip(idx[0][keep], vals[0][keep], strict=True)
        ]

    def _category_drop(self, category: str) -> torch.Tensor:
        """[N+1] bool: the items a category filter leaves out (computed once per category)."""
        drop = self._category_drops.get(category)
        if drop is None:
            drop = self._category_drops[category] = ~torch.from_numpy(self._category_mask(category))
        return drop

    def _category_mask(self, category: str) -> np.ndarray:
        if self.categories is None:
            raise Unavailable(
                "category",
                "filtering by category needs the item attributes of the feature store, "
                "which could not be read at start",
            )
        mask = self.categories.get(category)
        if mask is None:
            raise InvalidRequest("category", f"unknown category {category!r}")
        return mask

    def _search_mask(self, name: str, value: str) -> np.ndarray:
        """[N+1] bool: items whose brand (or one of whose category names) is `value`."""
        if self._search_filters is None:
            cat = self.search_index.catalog
            masks: dict[str, dict[str, np.ndarray]] = {"category": {}, "brand": {}}
            for enc in range(1, cat.n_items + 1):
                keys = {"brand": [cat.brands[enc]], "category": cat.categories[enc]}
                for kind, values in keys.items():
                    for v in values:
                        if v:
                            m = masks[kind].setdefault(v.lower(), np.zeros(cat.n_items + 1, bool))
                            m[enc] = True
            self._search_filters = masks
        mask = self._search_filters[name].get(value.lower())
        if mask is None:
            raise InvalidRequest(f"filters.{name}", f"no item has {name} {value!r}")
        return mask

    def _load_catalog(self) -> tuple[torch.Tensor, str]:
        """Item categories and popularity from the store, else popularity from the model."""
        got = self.features.catalog(self.item_ids[1:].tolist())
        if got is not None:
            categories, counts = got
            if not counts.any() and all(c is None for c in categories):
                from augrec.features.store import FILL_COMMANDS

                log.warning(
                    "feature store %s holds no item or user rows: every answer will be a "
                    "popularity fallback until you fill it with %s",
                    getattr(self.features.store, "repo_path", "?"),
                    FILL_COMMANDS,
                )
            masks: dict[str, np.ndarray] = {}
            for enc, cat in enumerate(categories, start=1):
                if cat is not None:
                    masks.setdefault(cat, np.zeros(self.n_items + 1, dtype=bool))[enc] = True
            self.categories = masks
            # One scale for every popularity answer: 1.0 is the most popular item.
            relative = np.concatenate([[0.0], counts]) / max(float(np.max(counts, initial=0)), 1.0)
            return torch.from_numpy(relative.astype(np.float32)), "store"
        if self.features.client is not None:  # else opening it already said why, once
            log.warning("no item popularity from the feature store; falling back to the model's")
        return self.model.popularity().float(), "model"

    def _check_contract(self) -> tuple[str, list[str]]:
        """Does the store serve the feature definitions the model was trained with?"""
        if self.loaded.contract is None:
            return "not_recorded", []
        store = self.features.store
        if store is None:
            return "unchecked", []
        from augrec.features import contract

        try:
            problems = contract.check(contract.registry_definitions(store), self.loaded.contract)
        except Exception as exc:
            return "mismatch", [f"feature contract could not be checked: {exc}"]
        return ("mismatch", problems) if problems else ("ok", [])


def load_search_index(config: ServingConfig, loaded: LoadedModel) -> SearchIndex | None:
    """The configured index, else the run's `search_index.zip`, else None (no /search).

    Raises:
        IndexMismatch: the index was built for another catalog than the model's.
    """
    from augrec import rundir
    from augrec.search.index import SearchIndex

    path = config.search_index or (loaded.path / rundir.SEARCH_INDEX)
    if not config.search_index and not (loaded.path / rundir.SEARCH_INDEX).exists():
        return None
    return SearchIndex.load(path, loaded.item_ids)
