"""The augrec Bento: HTTP API, health, metrics, and the gRPC server, over one `ServingRecommender`.

    bentoml serve augrec.services.service:AugrecService      # or: augrec serve

Configured by environment variables (`augrec.serving.config.ENV`; `augrec serve` sets them).
Every endpoint is a few lines around `augrec.serving.recommender.ServingRecommender`, which the
gRPC servicers (`grpc_server.py`, `oip.py`) share in the same worker process.

- `POST /recommend`, `POST /similar`, `POST /events`, `POST /search`: typed JSON in and out;
- `GET /livez`, `/readyz` (ready = model loaded and feature contract not broken; with
  `AUGREC_READINESS_REQUIRES_STORE` the feature store answering too), `GET /status` (the
  same, explained, with the store's state, as JSON), `GET /metrics` (Prometheus);
- gRPC on `AUGREC_GRPC_PORT` (default 50051), started by `on_startup`, stopped by
  `on_shutdown`: `augrec.v1.Recommender`, the Open Inference Protocol, health, reflection.
"""

from __future__ import annotations

import logging

import bentoml
from augrec.services.middleware import AccessGuard, JsonBodyGuard
from fastapi import FastAPI
from starlette.responses import JSONResponse

from augrec.serving.errors import InvalidRequest, NotFound, RequestError, Unavailable
from augrec.serving.schemas import (
    EventRequest,
    EventResponse,
    Health,
    RecommendRequest,
    RecommendResponse,
    SearchRequest,
    SearchResponse,
    SimilarRequest,
    SimilarResponse,
)

log = logging.getLogger(__name__)
API_ROUTES = ("/recommend", "/similar", "/events", "/search")
status_app = FastAPI(title="augrec status", openapi_url=None, docs_url=None, redoc_url=None)


# Our refusals, as HTTP status and metric outcome. Returned as a JSON response (BentoML
# passes a Response through) so the body is `{"error", "field"}`, as readable as its own
# validation errors; raising BentoML's exceptions would hide a 503's reason.
HTTP_STATUS = {
    InvalidRequest: (400, "invalid"),
    NotFound: (404, "not_found"),
    Unavailable: (503, "unavailable"),
}


@bentoml.asgi_app(status_app, path="/")
@bentoml.service(
    name="augrec",
    # One worker per pod: the gRPC server lives in the worker, and scale comes from replicas
    # (several workers would share the gRPC port through SO_REUSEPORT; see docs/serving.md).
    workers=1,
    traffic={"timeout": 30, "max_concurrency": 512},
    # Sync endpoints run in this many threads (BentoML default 1): a slow online-store read
    # (Redis over the network) then does not hold up every other request.
    threads=4,
)
class AugrecService:
    """Recommendations over HTTP and gRPC from one registered model and the Feast store."""

    def __init__(self) -> None:
        from augrec.services import metrics

        from augrec.serving.config import ServingConfig
        from augrec.serving.recommender import ServingRecommender

        self.config = ServingConfig.from_env()
        self.metrics = metrics.get()
        self.rec = ServingRecommender.load(self.config, on_batch=self.metrics.batch_size.observe)
        self.metrics.feature_store_up.set(self.rec.features.up)
        self.rec.features.on_change = self.metrics.feature_store_up.set
        self.grpc = None

    @bentoml.on_startup
    def start_grpc(self) -> None:
        """Serve gRPC from this worker, over the same `ServingRecommender` as HTTP."""
        if self.config.grpc_port:
            from augrec.services.grpc_server import GrpcServer

            self.grpc = GrpcServer(self.rec, self.config, self.metrics).start()

    @bentoml.on_shutdown
    def stop_grpc(self) -> None:
        """Drain gRPC calls, then stop scoring."""
        if self.grpc is not None:
            self.grpc.stop()
        self.rec.close()

    def __is_ready__(self) -> bool:
        return self.rec.ready()

    def _call(self, endpoint: str, fn, request):
        with self.metrics.observe("http", endpoint) as info:
            try:
                response = fn(request)
            except RequestError as exc:
                return _refusal(exc, info)
            return _answered(response, info)

    @bentoml.api(route="/recommend")
    async def recommend(self, request: RecommendRequest, /) -> RecommendResponse:
        """Top-k items for a user: history from Feast (+ recent_items), seen items masked."""
        # A coroutine on the event loop that awaits its place in a scoring batch: a sync
        # endpoint would hold one of BentoML's threads per waiting request.
        with self.metrics.observe("http", "recommend") as info:
            try:
                response = await self.rec.recommend_async(request)
            except RequestError as exc:
                return _refusal(exc, info)
            return _answered(response, info)

    @bentoml.api(route="/similar")
    def similar(self, request: SimilarRequest, /) -> SimilarResponse:
        """Items most similar to an item (404 for an item outside the model's catalog)."""
        return self._call("similar", self.rec.similar, request)

    @bentoml.api(route="/events")
    def events(self, request: EventRequest, /) -> EventResponse:
        """Fold a live event into the user's online features; the next /recommend sees it."""
        return self._call("events", self.rec.push_event, request)

    @bentoml.api(route="/search")
    def search(self, request: SearchRequest, /) -> SearchResponse:
        """Products matching a query, re-ranked for `user_id` when given (docs/search.md)."""
        return self._call("search", self.rec.search, request)

    @status_app.get("/status")
    def status(self) -> Health:
        """Readiness, explained: model version, feature store, feature contract, problems."""
        return self.rec.health()


def _refusal(exc: RequestError, info: dict) -> JSONResponse:
    status, info["outcome"] = HTTP_STATUS[type(exc)]
    return JSONResponse({"error": str(exc), "field": exc.field}, status_code=status)


def _answered(response, info: dict):
    info["outcome"] = "fallback" if getattr(response, "fallback", False) else "ok"
    info["reason"] = getattr(response, "fallback_reason", None)
    return response


# Added first, so it runs first: a caller without a key or over its rate is turned away
# before its body is read (docs/serving.md, "Access control and limits").
AugrecService.add_asgi_middleware(AccessGuard)
AugrecService.add_asgi_middleware(
    JsonBodyGuard,
    paths=API_ROUTES,
    schemas={
        "/recommend": RecommendRequest,
        "/similar": SimilarRequest,
        "/events": EventRequest,
        "/search": SearchRequest,
    },
)
