import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Real public datasets: $AUGREC_DATA_DIR, else ../shared/datasets beside the repo."""
    return Path(os.environ.get("AUGREC_DATA_DIR", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def beauty_file() -> Path:
    path = data_dir() / "amazon-beauty" / "Beauty.txt"
    if not path.exists():
        pytest.skip(f"real data absent: {path} (set AUGREC_DATA_DIR to the datasets folder)")
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A small seeded synthetic dataset written once per session."""
    from augrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("synthetic")
    interactions, items = generate(SyntheticConfig(users=1500, items=600, seed=7))
    interactions.to_parquet(out / "interactions.parquet", index=False)
    items.to_parquet(out / "items.parquet", index=False)
    return out


class S3Server:
    """A moto S3 server on loopback; `uri(...)` names a fresh prefix in its bucket."""

    bucket = "augrec-test"

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self._n = 0

    def uri(self, name: str) -> str:
        self._n += 1
        return f"s3://{self.bucket}/{name}-{self._n}"

    def env(self) -> dict[str, str]:
        return {k: os.environ[k] for k in S3_ENV if k in os.environ}


S3_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AUGREC_S3_ENDPOINT_URL",
)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible HTTP server (PyPI `moto[server]`) for the session.

    Started as `python -m moto.server` on a free port of 127.0.0.1; the process environment
    gets fake credentials and `AUGREC_S3_ENDPOINT_URL` (what `augrec.storage` reads), so
    subprocesses started by tests reach it too. One bucket, `augrec-test`.
    """
    pytest.importorskip("moto", reason="moto[server] is in the dev extra")
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    saved = {k: os.environ.get(k) for k in S3_ENV}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AUGREC_S3_ENDPOINT_URL": endpoint,
            }
        )
        from augrec.storage import s3_client

        s3_client().create_bucket(Bucket=S3Server.bucket)
        yield S3Server(endpoint)
    finally:
        proc.terminate()
        proc.wait(10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
