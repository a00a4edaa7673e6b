"""A bare BentoML endpoint that answers a constant: the floor under `benchmarks/serving.py`.

Same request and response shape as `POST /recommend`, no model, no feature store: whatever
latency it shows is BentoML, the HTTP stack and the client on this machine.

    bentoml serve floor_service:Floor --working-dir benchmarks --port 3100
"""

from __future__ import annotations

import bentoml

ANSWER = {
    "items": [{"item_id": i, "score": 1.0 / i} for i in range(1, 11)],
    "model_version": "floor",
    "fallback": False,
    "fallback_reason": None,
}


@bentoml.service(name="floor", workers=1, traffic={"timeout": 30, "max_concurrency": 512})
class Floor:
    """Returns the same ten items for everyone."""

    @bentoml.api(route="/recommend")
    def recommend(self, user_id: int, k: int = 10) -> dict:
        """The constant answer."""
        return ANSWER
