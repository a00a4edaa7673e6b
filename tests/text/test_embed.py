import json
import os
import subprocess
import sys

import numpy as np
import pytest

from augrec.text import embed

TITLES = ["OPI Red Nail Polish, 0.5 oz", "Matte red lipstick", "Argan oil shampoo", ""]

# Runs in a fresh interpreter whose sockets cannot be created: any download would fail.
OFFLINE_SCRIPT = """
import json, socket, sys
def refuse(*a, **k):
    raise OSError("network disabled for this test")
class NoSocket(socket.socket):
    def __init__(self, *a, **k):
        refuse()
socket.socket = NoSocket
socket.create_connection = refuse
socket.getaddrinfo = refuse
try:
    socket.socket()
    sys.exit("sockets still work")
except OSError:
    pass
from augrec.text.embed import embed_texts
v = embed_texts(json.loads(sys.argv[1]), cache_dir=sys.argv[2])
print(json.dumps({"shape": list(v.shape), "sum": float(abs(v).sum())}))
"""


def test_embedding_runs_with_the_network_disabled(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HOME=str(tmp_path / "home"))
    out = subprocess.run(
        [sys.executable, "-c", OFFLINE_SCRIPT, json.dumps(TITLES), str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["shape"] == [len(TITLES), embed.DIM]
    assert got["sum"] > 0
    assert not (tmp_path / "home").exists()  # nothing fetched into a default cache either


def test_embeddings_are_deterministic_normalised_and_cached(tmp_path, monkeypatch):
    a = embed.embed_texts(TITLES, cache_dir=tmp_path)
    assert a.shape == (4, embed.DIM) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a[:3], axis=1), 1.0, rtol=1e-5)
    assert not a[3].any()  # empty text: zero vector
    np.testing.assert_array_equal(embed.encode(TITLES), a)  # same without the cache
    files = list(tmp_path.glob("*.npy"))
    assert [f.stem for f in files] == [embed.content_key(TITLES)]

    def fail(*_a, **_k):
        raise AssertionError("a cached embedding must not re-run the encoder")

    monkeypatch.setattr(embed, "encode", fail)
    np.testing.assert_array_equal(embed.embed_texts(TITLES, cache_dir=tmp_path), a)
    with pytest.raises(AssertionError):  # different content, different key
        embed.embed_texts([*TITLES, "new"], cache_dir=tmp_path)


def test_content_key_separates_texts_and_encoders():
    assert embed.content_key(["ab", "c"]) != embed.content_key(["a", "bc"])
    assert embed.content_key(["a"]) != embed.content_key(["a"], dim=64)
    assert embed.content_key(["a"]) == embed.content_key(["a"])
