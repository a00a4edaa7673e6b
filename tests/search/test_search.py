import numpy as np
import pytest
import torch

from augrec.search import rank
from augrec.search.catalog import CatalogText, fingerprint
from augrec.search.index import IndexMismatch, SearchIndex, SearchParams


def test_ranks_break_ties_by_lower_id():
    s = torch.tensor([[-np.inf, 1.0, 3.0, 1.0, 2.0]])
    assert rank.ranks_desc(s).tolist() == [[5, 3, 1, 4, 2]]


def test_rrf_by_hand():
    # items 1..3; lexical ranks 2,1,- (item 3 unmatched); semantic ranks 1,3,2
    lex = torch.tensor([[0.0, 1.0, 2.0, 0.0]])
    sem = torch.tensor([[0.0, 0.9, 0.1, 0.5]])
    k, a = 10, 0.25
    got = rank.rrf(lex, sem, a, k)[0, 1:] / (k + 1)
    want = [a / (k + 2) + (1 - a) / (k + 1), a / (k + 1) + (1 - a) / (k + 3), (1 - a) / (k + 2)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    assert rank.rrf(lex, sem, 1.0, k)[0, 3] == 0  # alpha 1: unmatched items score nothing


def test_personalize_reranks_only_candidates_and_weight_zero_keeps_fusion():
    fused = torch.tensor([[-np.inf, 0.9, 0.8, 0.7, 0.1]])
    model = torch.tensor([[0.0, 0.0, 0.0, 5.0, 9.0]])  # loves item 4, which is no candidate
    same = rank.personalize(fused, model, 0.0, depth=3)
    assert rank.ranks_desc(same).tolist() == rank.ranks_desc(fused).tolist()
    out = rank.personalize(fused, model, 1.0, depth=3)
    order = torch.argsort(out[0], descending=True, stable=True).tolist()
    assert order[:4] == [3, 1, 2, 4]  # item 3 lifted among candidates; item 4 stays last


def test_index_finds_products_by_words_and_meaning(demo_index):
    # an even fusion: the defaults are Beauty's validation choice (alpha 0.95), tuned for
    # category-word queries, and this checks that both retrievers find products
    even = SearchParams(alpha=0.5, rrf_k=60)
    for query, word in (("matte lipstick", "Lipstick"), ("mascara", "Mascara")):
        top = torch.topk(demo_index.score([query], params=even), 5).indices[0].tolist()
        assert all(word in demo_index.catalog.titles[i] for i in top), query
    # semantic retrieval alone finds a product type named differently in the query
    sem = demo_index.semantic(["lip colour"])
    top = torch.topk(sem, 10).indices[0].tolist()
    assert any("Lipstick" in demo_index.catalog.titles[i] for i in top)


def test_index_round_trips_and_is_refused_for_another_catalog(demo_index, demo, tmp_path):
    _, split = demo
    path = demo_index.with_params(SearchParams(alpha=0.3, personalization=0.2)).save(
        tmp_path / "ix"
    )
    loaded = SearchIndex.load(path, split.item_ids)
    assert loaded.params.alpha == 0.3 and loaded.fingerprint == fingerprint(split.item_ids)
    q = ["red nail polish"]
    assert torch.equal(loaded.score(q), demo_index.with_params(loaded.params).score(q))
    other = split.item_ids.copy()
    other[[1, 2]] = other[[2, 1]]  # same items, another numbering: rows would mean other items
    with pytest.raises(IndexMismatch, match="rebuild"):
        SearchIndex.load(path, other)
    with pytest.raises(IndexMismatch):
        SearchIndex.load(path, split.item_ids[:-1])


def test_catalog_text_documents_and_frame_round_trip():
    cat = CatalogText(
        np.array([-1, 7, 9]), ["", "Red Lipstick", ""], ["", "OPI", "Acme"], [[], ["Makeup"], []]
    )
    assert cat.documents() == ["", "Red Lipstick OPI Makeup", "Acme"]
    back = CatalogText.from_frame(cat.frame())
    assert back.documents() == cat.documents()
