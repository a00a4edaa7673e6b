"""Title vectors for SASRec: deterministic, cached, whitened, and used by the model."""

import numpy as np
import pytest
import torch

from augrec.data.loaders import load_dataset
from augrec.data.splits import leave_one_out
from augrec.models import build_model
from augrec.text.reduce import item_text_vectors, whiten

TITLES = [
    "",
    "OPI red nail polish",
    "Matte red lipstick",
    "Argan oil shampoo",
    "",
    "Dove body wash",
    "Shea butter hand cream",
    "Volumizing mascara",
]


def test_whiten_gives_unit_variance_directions_and_fixed_signs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    z = whiten(x, 8, scale=1.0)
    assert z.shape == (200, 8)
    assert np.allclose(z.std(0, ddof=1), 1.0, atol=1e-4)
    assert np.allclose(np.corrcoef(z.T), np.eye(8), atol=1e-4)
    assert np.array_equal(whiten(x, 8, scale=1.0), z)
    assert np.allclose(whiten(x * -1, 8, 1.0)[:, 0], -z[:, 0], atol=1e-5)  # data decide signs
    wide = whiten(x[:5], 8, scale=1.0)  # rank 4 after centring: the rest stays zero
    assert np.abs(wide[:, 4:]).max() == 0


def test_vectors_are_deterministic_and_cached(tmp_path):
    v1, titled = item_text_vectors(TITLES, 4, cache_dir=tmp_path)
    assert titled.tolist() == [False, True, True, True, False, True, True, True]
    assert v1.shape == (8, 4) and np.abs(v1[~titled]).max() == 0
    assert np.abs(v1[titled]).sum() > 0
    cached = list(tmp_path.glob("*.npy"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    v2, _ = item_text_vectors(TITLES, 4, cache_dir=tmp_path)
    assert np.array_equal(v1, v2) and cached[0].stat().st_mtime_ns == stamp  # a file read


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from augrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("titled")
    interactions, items = generate(SyntheticConfig(users=150, items=60, seed=0))
    interactions.to_csv(out / "interactions.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    return leave_one_out(load_dataset(out))


def test_init_puts_the_projected_text_vector_in_the_item_embedding(split, tmp_path, monkeypatch):
    monkeypatch.setenv("AUGREC_CACHE_DIR", str(tmp_path))
    assert split.item_titles is not None and split.item_titles[0] == ""
    expected, titled = item_text_vectors(split.item_titles, 16)
    model = build_model("sasrec", {"epochs": 0, "hidden": 16, "text": "init"}, seed=0)
    info = model.fit(split)
    assert info["text"] == {"mode": "init", "used": True, "items_with_title": int(titled.sum())}
    emb = model.net.item_emb.weight.detach().numpy()
    assert np.array_equal(emb[titled], expected[titled])
    plain = build_model("sasrec", {"epochs": 0, "hidden": 16}, seed=0)
    plain.fit(split)
    assert np.array_equal(plain.net.item_emb.weight.detach().numpy()[0], emb[0])


def test_fuse_adds_the_text_through_a_learned_projection_and_round_trips(
    split, tmp_path, monkeypatch
):
    monkeypatch.setenv("AUGREC_CACHE_DIR", str(tmp_path))
    expected, _ = item_text_vectors(split.item_titles, 16)
    # without attribute embeddings, the table is exactly id embedding + projected text
    params = {"epochs": 0, "hidden": 16, "text": "fuse", "use_attributes": False}
    model = build_model("sasrec", params, seed=0)
    model.fit(split)
    net = model.net
    table = net.item_table().detach()
    assert torch.allclose(table - net.item_emb.weight.detach(), torch.from_numpy(expected))
    again = build_model("sasrec", params)
    again.load_state_dict(model.state_dict())
    h = split.test.histories[:4]
    assert torch.allclose(model.score(h), again.score(h))


def test_a_catalog_without_titles_trains_as_today(split):
    from dataclasses import replace

    bare = replace(split, item_titles=None)
    model = build_model("sasrec", {"epochs": 0, "hidden": 16, "text": "fuse"}, seed=0)
    info = model.fit(bare)
    assert info["text"]["used"] is False and model.net.text_proj is None
    plain = build_model("sasrec", {"epochs": 0, "hidden": 16}, seed=0)
    plain.fit(bare)
    assert torch.equal(model.net.item_table(), plain.net.item_table())
