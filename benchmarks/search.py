"""Personalized product search on leave-one-out data (Ai et al., SIGIR 2017 protocol).

For each user's held-out item, the query is the words of that item's category-path names
(not its title), the target is the item and the context is the user's history before it.
Every item of the catalog is ranked (the user's history masked, as in recommendation);
HR@10, NDCG@10 and MRR (untruncated) per method:

    bm25          BM25 over title + brand + category names (bm25s, Snowball-stemmed)
    semantic      cosine of WordLlama embeddings of the same text
    fused         weighted reciprocal-rank fusion (alpha, k chosen on validation)
    fused+pers    fused candidates re-ranked by w x the user's standardised SASRec score
                  (w and the candidate depth chosen on validation)
    recommender   the SASRec ranking without the query

The validation split (second-to-last item, history before it) chooses every weight; test is
read once with the chosen weights. Models: run directories written by `augrec train` (one
per seed); rows without a model are the same for every seed.

    python benchmarks/search.py --data ../shared/datasets/amazon-beauty/Beauty.txt \\
        --titles ../shared/datasets/amazon-beauty/derived/beauty_titles.tsv \\
        --attributes ../shared/datasets/amazon-beauty/derived/beauty_attributes.tsv \\
        --models runs/search-sasrec-beauty-seed0 runs/search-sasrec-beauty-seed1 ...

Writes, per model, RESULTS/<run name>/metrics.json and search_results.parquet (per test
user: target, query and the 0-based rank of the target under each method; a missing rank is
MISS) and RESULTS/summary.json (mean ± std over seeds, paired tests); prints the summary as
JSON. A model whose metrics.json exists is not recomputed (resumable).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from augrec.data.loaders import load_dataset
from augrec.data.splits import EvalSet, Split, leave_one_out
from augrec.evaluation import metrics as M
from augrec.evaluation.ranking import mask_scores, target_ranks
from augrec.rundir import load_model
from augrec.search import rank
from augrec.search.catalog import catalog_from_dataset, fingerprint, read_attribute_names
from augrec.search.index import SearchIndex, SearchParams

METHODS = ("bm25", "semantic", "fused", "fused+pers", "recommender")
ALPHAS = (0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.95)
RRF_KS = (10, 60)
WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
DEPTHS = (100, 1000)
K = 10
BATCH = 512


def query_words(categories: list[str]) -> str:
    """Ai et al.'s query: the distinct lower-case words of the category-path names."""
    words: list[str] = []
    for name in categories:
        for w in re.findall(r"[a-z0-9]+", name.lower()):
            if w not in words:
                words.append(w)
    return " ".join(words)


def metrics_of(ranks: np.ndarray) -> dict[str, float]:
    """HR@10, NDCG@10 and MRR (untruncated) from 0-based target ranks."""
    ranks = np.asarray(ranks)
    rr = np.where(ranks == M.MISS, 0.0, 1.0 / (ranks.astype(np.float64) + 1.0))
    return {
        "hr@10": M.hit_rate(ranks, K),
        "ndcg@10": M.ndcg(ranks, K),
        "mrr": float(rr.mean()) if ranks.size else 0.0,
    }


class Queries:
    """The eval users with a category query, and per unique query the text score matrices."""

    def __init__(self, index: SearchIndex, es: EvalSet):
        cats = index.catalog.categories
        q = [query_words(cats[t]) for t in es.targets]
        keep = np.flatnonzero([bool(x) for x in q])
        self.rows = keep  # positions in the eval set
        self.users = es.users[keep]
        self.histories = [es.histories[i] for i in keep]
        self.targets = es.targets[keep]
        texts = [q[i] for i in keep]
        self.unique, self.qidx = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        self.texts = texts
        self.dropped = len(es) - len(keep)

    def batches(self):
        for s in range(0, len(self.users), BATCH):
            yield slice(s, min(s + BATCH, len(self.users)))


def ranks_from(per_query: torch.Tensor, qs: Queries) -> np.ndarray:
    """Target ranks when each user's scores are their query's row of `per_query`."""
    out = np.empty(len(qs.users), dtype=np.int64)
    for b in qs.batches():
        s = per_query[torch.from_numpy(qs.qidx[b])].clone()
        mask_scores(s, qs.histories[b])
        out[b] = target_ranks(s, qs.targets[b])
    return out


def text_rows(index: SearchIndex, qs: Queries) -> dict:
    lex = index.lexical(list(qs.unique))
    sem = index.semantic(list(qs.unique))
    return {"lex": lex, "sem": sem, "ranks": rank.list_ranks(lex, sem, index._has_text)}


def fused_matrix(tm: dict, alpha: float, k: int) -> torch.Tensor:
    return rank.rrf_from_ranks(*tm["ranks"], alpha, k)


def tune_fusion(tm: dict, qs: Queries) -> tuple[dict, list]:
    grid = []
    for k in RRF_KS:
        for a in ALPHAS:
            r = ranks_from(fused_matrix(tm, a, k), qs)
            grid.append({"alpha": a, "rrf_k": k, "ndcg@10": M.ndcg(r, K)})
    best = max(grid, key=lambda g: (g["ndcg@10"], -abs(g["alpha"] - 0.5)))
    return {"alpha": best["alpha"], "rrf_k": best["rrf_k"]}, grid


def personalized_ranks(
    model, fused: torch.Tensor, fused_ranks: np.ndarray, qs: Queries, combos
) -> tuple[dict[tuple[float, int], np.ndarray], np.ndarray]:
    """Target ranks under `rank.personalize` for each (weight, depth), and the recommender's.

    Equal to ranking the whole catalog with `rank.personalize` (a test checks it), but only
    the candidates are compared: non-candidates keep their fused order below every
    candidate, so a target outside the candidates keeps its fused rank (`fused_ranks`,
    history masked), and a target inside is ranked among the candidates alone.
    """
    depths = sorted({d for _, d in combos})
    ids_q = {d: rank.candidate_ids(fused, d) for d in depths}
    out = {c: fused_ranks.copy() for c in combos}
    rec = np.empty(len(qs.users), dtype=np.int64)
    for b in qs.batches():
        hist = qs.histories[b]
        m = model.score(hist).float()
        qi = torch.from_numpy(qs.qidx[b])
        t = torch.from_numpy(qs.targets[b])[:, None]
        seen = mask_scores(torch.zeros_like(m), hist) == -torch.inf  # [B, N+1] padding + history
        f = fused[qi]
        for d in depths:
            ids = ids_q[d][qi]  # [B, d]
            fc, z, sc = f.gather(1, ids), rank.standardize(m.gather(1, ids)), seen.gather(1, ids)
            is_t = ids == t
            inside = (is_t & ~sc).any(dim=1).numpy()
            for w, dd in combos:
                if dd != d:
                    continue
                comb = (fc + w * z).masked_fill(sc, -torch.inf)
                ts = torch.where(is_t, comb, -torch.inf).max(dim=1, keepdim=True).values
                higher = (comb > ts).sum(dim=1)
                tied = ((comb == ts) & (ids < t)).sum(dim=1)
                r = (higher + tied).numpy()
                col = out[(w, d)][b]
                col[inside] = r[inside]
                out[(w, d)][b] = col
        mask_scores(m, hist)
        rec[b] = target_ranks(m, qs.targets[b])
    return out, rec


@torch.no_grad()  # scoped: a process-wide switch leaked into later tests in the same process
def evaluate_model(run: Path, ds, split: Split, index: SearchIndex, attrs_note: str) -> dict:
    t0 = time.perf_counter()
    model, item_ids = load_model(run, device="cpu")
    if fingerprint(item_ids) != index.fingerprint:
        raise SystemExit(f"{run}: the model's catalog is not this data's (fingerprint differs)")
    qv, qt = Queries(index, split.valid), Queries(index, split.test)
    tv, tt = text_rows(index, qv), text_rows(index, qt)
    fusion, fusion_grid = tune_fusion(tv, qv)
    fv = fused_matrix(tv, fusion["alpha"], fusion["rrf_k"])
    combos = [(w, d) for d in DEPTHS for w in WEIGHTS]
    pv, _ = personalized_ranks(model, fv, ranks_from(fv, qv), qv, combos)
    pers_grid = [{"weight": w, "depth": d, "ndcg@10": M.ndcg(pv[(w, d)], K)} for w, d in combos]
    best = max(pers_grid, key=lambda g: (g["ndcg@10"], -g["weight"]))
    params = SearchParams(
        alpha=fusion["alpha"],
        rrf_k=fusion["rrf_k"],
        personalization=best["weight"],
        depth=best["depth"],
    )
    valid = {
        "fused": max(g["ndcg@10"] for g in fusion_grid),
        "fused+pers": best["ndcg@10"],
    }
    # ---- test, read once with the chosen weights ------------------------------------------
    ft = fused_matrix(tt, params.alpha, params.rrf_k)
    fused_test = ranks_from(ft, qt)
    chosen = (params.personalization, params.depth)
    pt, rec = personalized_ranks(model, ft, fused_test, qt, [chosen])
    ranks = {
        "bm25": ranks_from(tt["lex"], qt),
        "semantic": ranks_from(tt["sem"], qt),
        "fused": fused_test,
        "fused+pers": pt[chosen],
        "recommender": rec,
    }
    results = pd.DataFrame(
        {
            "user_id": split.user_ids[qt.users],
            "target_item_id": split.item_ids[qt.targets],
            "query": qt.texts,
            **{f"rank_{m}": ranks[m] for m in METHODS},
        }
    )
    return {
        "run": str(run),
        "model": model.name,
        "seed": int(model.seed),
        "params": params.model_dump(),
        "valid_ndcg@10": valid,
        "valid_grid": {"fusion": fusion_grid, "personalization": pers_grid},
        "test": {m: metrics_of(ranks[m]) for m in METHODS},
        "users": {
            "test": len(qt.users),
            "valid": len(qv.users),
            "dropped_no_category": {"test": qt.dropped, "valid": qv.dropped},
            "unique_test_queries": len(qt.unique),
        },
        "text": attrs_note,
        "seconds": round(time.perf_counter() - t0, 1),
    }, results


def paired(a: np.ndarray, b: np.ndarray) -> dict:
    from scipy import stats

    diff = a - b
    t = stats.ttest_rel(a, b) if diff.any() else None
    w = stats.wilcoxon(diff[diff != 0]) if (diff != 0).sum() > 10 else None
    return {
        "mean_diff": float(diff.mean()),
        "relative": float(diff.mean() / b.mean()) if b.mean() else None,
        "p_ttest": float(t.pvalue) if t is not None else None,
        "p_wilcoxon": float(w.pvalue) if w is not None else None,
        "users": int(len(a)),
    }


def summarize(docs: list[dict], frames: list[pd.DataFrame]) -> dict:
    rows = {}
    for m in METHODS:
        vals = {key: [d["test"][m][key] for d in docs] for key in ("hr@10", "ndcg@10", "mrr")}
        rows[m] = {
            key: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
            for key, v in vals.items()
        }
    # Per-user NDCG@10 averaged over seeds (the same users in every seed), then paired.
    per_user = {
        m: np.mean([M.per_user_ndcg(f[f"rank_{m}"].to_numpy(), K) for f in frames], axis=0)
        for m in METHODS
    }
    return {
        "seeds": [d["seed"] for d in docs],
        "runs": [d["run"] for d in docs],
        "params": [d["params"] for d in docs],
        "test": rows,
        "paired_ndcg@10": {
            "fused+pers vs bm25": paired(per_user["fused+pers"], per_user["bm25"]),
            "fused+pers vs fused": paired(per_user["fused+pers"], per_user["fused"]),
            "fused+pers vs recommender": paired(per_user["fused+pers"], per_user["recommender"]),
            "fused vs bm25": paired(per_user["fused"], per_user["bm25"]),
        },
        "users": docs[0]["users"],
    }


def recompute(results: pd.DataFrame) -> dict:
    """The test metrics of every method, from a search_results.parquet alone."""
    return {m: metrics_of(results[f"rank_{m}"].to_numpy()) for m in METHODS}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--titles", type=Path, help="item_id/title table (default: beside data)")
    ap.add_argument("--attributes", type=Path, help="attribute_id/name[/kind] table (Amazon)")
    ap.add_argument("--models", nargs="+", required=True, type=Path, help="run directories")
    ap.add_argument("--results", type=Path, default=Path("benchmarks/results/search"))
    ap.add_argument("--cache-dir", type=Path, default=None, help="text embedding cache")
    args = ap.parse_args(argv)

    ds = load_dataset(args.data, titles=args.titles)
    split = leave_one_out(ds)
    attrs = read_attribute_names(args.attributes) if args.attributes else None
    catalog = catalog_from_dataset(ds, split.item_ids, attrs)
    index = SearchIndex.build(catalog, cache_dir=args.cache_dir)
    note = f"titles: {args.titles or 'beside data'}; attributes: {args.attributes}"
    args.results.mkdir(parents=True, exist_ok=True)
    docs, frames = [], []
    for run in args.models:
        out = args.results / run.name
        mfile, rfile = out / "metrics.json", out / "search_results.parquet"
        if mfile.exists() and rfile.exists():
            doc, frame = json.loads(mfile.read_text()), pd.read_parquet(rfile)
        else:
            doc, frame = evaluate_model(run, ds, split, index, note)
            out.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(rfile, index=False)
            mfile.write_text(json.dumps(doc, indent=2))
        print(f"{run.name}: {json.dumps(doc['test'])}", file=sys.stderr)
        docs.append(doc)
        frames.append(frame)
    summary = summarize(docs, frames)
    (args.results / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
