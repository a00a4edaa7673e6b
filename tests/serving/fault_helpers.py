"""Helpers for the fault tests: a Redis that can be stopped and started again, steady load,
and the processes of a running server."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REDIS_PASSWORD = "fault-secret"


class RedisProcess:
    """A redis-server on a fixed loopback port whose data survives a stop and a start.

    `stop()` is `SHUTDOWN SAVE` (the data goes to `dump.rdb` in `workdir`); `start()` on the
    same port and folder loads it back, as a restarted Redis with persistence does.
    """

    def __init__(self, exe: str, workdir: Path, port: int):
        self.exe, self.workdir, self.port = exe, workdir, port
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=REDIS_PASSWORD)

    def start(self, timeout: float = 15) -> None:
        argv = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--requirepass", REDIS_PASSWORD, "--dir", str(self.workdir)]
        argv += ["--save", "", "--appendonly", "no", "--dbfilename", "dump.rdb"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = self.client()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "redis-server exited at start"
            try:
                client.ping()
                client.close()
                return
            except redis.exceptions.BusyLoadingError:
                time.sleep(0.05)
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Save the data and shut down (the way an operator's restart or a failover does)."""
        import redis

        try:
            self.client().shutdown(save=True)
        except redis.ConnectionError:
            pass  # the connection drops as the server exits
        self.proc.wait(15)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def redis_exe() -> str | None:
    return shutil.which("redis-server")


@dataclass
class Load:
    """Steady HTTP `/recommend` load from a background thread, every answer recorded."""

    base: str
    users: list[int]
    records: list[tuple[float, int, bool | None, str | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        i = 0
        with httpx.Client(base_url=self.base, timeout=10) as http:
            while not self._stop.is_set():
                user = self.users[i % len(self.users)]
                i += 1
                try:
                    r = http.post("/recommend", json={"user_id": user, "k": 5})
                    body = r.json() if r.status_code == 200 else {}
                    rec = (time.monotonic(), r.status_code, body.get("fallback"))
                    self.records.append((*rec, body.get("fallback_reason")))
                except httpx.HTTPError as exc:
                    self.records.append((time.monotonic(), 0, None, type(exc).__name__))
                time.sleep(0.01)

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def between(self, t0: float, t1: float) -> list[tuple]:
        return [r for r in self.records if t0 <= r[0] < t1]


def worker_pids(pid: int) -> list[int]:
    """Pids of the BentoML service workers under the `bentoml serve` process `pid`."""
    import psutil

    out = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            cmd = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "worker" in cmd and "service" in cmd:
            out.append(child.pid)
    return out
