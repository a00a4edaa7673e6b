"""A Kubernetes API emulator (PyPI `kmock`) on loopback, and a stand-in for KubeRay.

kmock stores objects in memory and answers the `kubernetes` client's create/get/patch/delete;
it runs no controllers, so `FakeKubeRay` plays KubeRay's part: once the RayJob appears it
patches `status` step by step, from a thread, while `run_rayjob` polls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).parents[2] / ".." / "shared" / "schemas" / "kuberay"


class Emulator:
    """A running `kmock.KubernetesEmulator` behind a `kmock.Server` on 127.0.0.1."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kmock", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.url = ""
        self.error: BaseException | None = None

    def _serve(self) -> None:
        import kmock

        async def main() -> None:
            async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator) as server:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                self.url = str(server.url).rstrip("/")
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self._ready.set()

    def start(self) -> Emulator:
        self._thread.start()
        if not self._ready.wait(15) or self.error is not None:
            raise RuntimeError(f"kmock did not start: {self.error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def api_client(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)


def custom_objects(api_client: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api_client)


def get_rayjob(api_client: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """The stored RayJob, or None when it does not exist."""
    from kubernetes import client

    try:
        return custom_objects(api_client).get_namespaced_custom_object(
            "ray.io", "v1", namespace, "rayjobs", name, _request_timeout=5
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


class FakeKubeRay:
    """Waits for the RayJob, then applies `steps` (status patches) `step_s` apart.

    `after` (optional) runs once every step is applied, e.g. to interrupt the test's main
    thread. Everything is bounded by `limit_s`; errors are kept in `error` for the test.
    """

    def __init__(
        self,
        emulator: Emulator,
        namespace: str,
        name: str,
        steps: list[dict[str, Any]],
        step_s: float = 0.05,
        after: Any = None,
        limit_s: float = 10.0,
    ) -> None:
        self.api_client = emulator.api_client()
        self.namespace, self.name = namespace, name
        self.steps, self.step_s, self.after, self.limit_s = steps, step_s, after, limit_s
        self.seen_spec: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-kuberay", daemon=True)

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + self.limit_s
            while (obj := get_rayjob(self.api_client, self.namespace, self.name)) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("the RayJob never appeared")
                time.sleep(0.01)
            self.seen_spec = obj
            api = custom_objects(self.api_client)
            for status in self.steps:
                time.sleep(self.step_s)
                api.patch_namespaced_custom_object_status(
                    "ray.io",
                    "v1",
                    self.namespace,
                    "rayjobs",
                    self.name,
                    {"status": status},
                    _request_timeout=5,
                )
            if self.after is not None:
                time.sleep(self.step_s)
                self.after()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> FakeKubeRay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(self.limit_s)
        self.api_client.close()
