"""`report.html` of a pipeline run: what was trained, what was chosen, and what the gate said.

One self-contained page (figures inlined as PNG, drawn with matplotlib's object API): the
gate's checks, the choice between the baseline and the augmented model on validation NDCG@10,
test metrics of both, the training curves, metrics per history-length and target-popularity
bucket with and without augmentation, and real vs synthetic item popularity.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from augrec import rundir
from augrec.augment.report_html import STYLE, fmt, png

HEADLINE = ("ndcg@10", "hr@10", "mrr@10", "ndcg@20", "hr@20", "coverage@10", "tail_share@10")
_STATUS = {"pass": "pass", "fail": "fail", "skip": "skip"}


def build(
    baseline: str | Path,
    gated: str | Path,
    selection: dict[str, Any],
    candidate: str | Path | None = None,
    synthetic: str | Path | None = None,
    dataset: str | Path | None = None,
) -> str:
    """The report page.

    Args:
        baseline: Run directory trained on real data only.
        gated: The chosen run directory with its `gate.json`.
        selection: What `steps.select` returned (method, both validation scores, choice).
        candidate: Run directory trained with the synthetic set, when there was one.
        synthetic: The synthetic set (for real vs synthetic popularity), when there was one.
        dataset: The dataset artifact (real item popularity).
    """
    runs = {"baseline (real only)": rundir.read_metrics(baseline)}
    if candidate is not None:
        runs["augmented"] = rundir.read_metrics(candidate)
    verdict = rundir.read_json(gated, rundir.GATE)
    chosen = (
        runs["baseline (real only)"]
        if selection.get("chosen") != "augmented"
        else runs["augmented"]
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>augrec run: {html.escape(chosen['dataset'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>augrec run — {html.escape(chosen['dataset'])}, {html.escape(chosen['model'])}</h1>",
        _verdict(verdict),
        _selection(selection),
        _metrics_table(runs),
        "<h2>Training</h2><div class='figs'>",
        _curves(runs),
        "</div><h2>By user history length and target popularity (test)</h2><div class='figs'>",
        _buckets(runs),
        "</div>",
    ]
    if synthetic is not None and dataset is not None:
        parts += [
            "<h2>Real vs synthetic item popularity</h2><div class='figs'>",
            _popularity(dataset, synthetic),
            "</div><p>The synthetic set's own report (fidelity, diversity, privacy) is the "
            "augment step's <code>synthetic_report.html</code>.</p>",
        ]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _verdict(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return "<p>The gate did not run.</p>"
    word = "PASSED" if verdict["passed"] else "FAILED: " + ", ".join(verdict["failed"])
    cls = "pass" if verdict["passed"] else "fail"
    rows = "".join(
        f"<tr class='{_STATUS[c['status']]}'><td class='text'>{html.escape(c['name'])}</td>"
        f"<td class='text'>{c['status']}</td><td class='text'>{html.escape(c['summary'])}</td></tr>"
        for c in verdict["checks"]
    )
    return (
        f"<h2>Validation gate</h2><p class='verdict {cls}'>{word}</p>"
        f"<table><tr><th class='text'>check</th><th class='text'>result</th>"
        f"<th class='text'>numbers</th></tr>{rows}</table>"
    )


def _selection(sel: dict[str, Any]) -> str:
    method = html.escape(str(sel.get("method")))
    rows = f"<tr><td class='text'>baseline (real only)</td><td>{fmt(sel.get('baseline'))}</td></tr>"
    if "augmented" in sel:
        rows += f"<tr><td class='text'>augmented</td><td>{fmt(sel.get('augmented'))}</td></tr>"
    why = {
        "none": "no augmentation was asked for",
        "auto": "auto keeps augmentation only when it improves validation NDCG@10",
    }.get(sel.get("method", ""), "the augmentation method was chosen explicitly")
    return (
        f"<h2>Augmentation: {method}</h2><table><tr><th class='text'>model</th>"
        f"<th>valid NDCG@10</th></tr>{rows}</table>"
        f"<p>Chosen: <b>{html.escape(str(sel.get('chosen')))}</b> ({why}; test metrics are "
        "never used to choose).</p>"
    )


def _metrics_table(runs: dict[str, dict[str, Any]]) -> str:
    head = "".join(f"<th>{k}</th>" for k in HEADLINE)
    rows = "".join(
        f"<tr><td class='text'>{html.escape(name)}</td>"
        + "".join(f"<td>{fmt(m['test'].get(k))}</td>" for k in HEADLINE)
        + f"<td>{fmt(m['valid'].get('ndcg@10'))}</td><td>{fmt(m['seconds'].get('train'))}</td>"
        "</tr>"
        for name, m in runs.items()
    )
    return (
        "<h2>Test metrics</h2><p>Full ranking over every item, seen items masked.</p>"
        f"<table><tr><th class='text'>model</th>{head}<th>valid NDCG@10</th><th>train s</th>"
        f"</tr>{rows}</table>"
    )


def _figure(width: float = 5.2, height: float = 3.4) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot(1, 1, 1)


def _curves(runs: dict[str, dict[str, Any]]) -> str:
    curves = {n: m.get("history") or [] for n, m in runs.items()}
    if not any(curves.values()):
        return "<p>No per-epoch curve (the model is not trained by epochs).</p>"
    out = []
    for key, label in (("loss", "training loss"), ("valid_ndcg@10", "validation NDCG@10")):
        fig, ax = _figure()
        for name, hist in curves.items():
            pts = [(h["epoch"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
        out.append(png(fig))
    return "".join(out)


def _buckets(runs: dict[str, dict[str, Any]]) -> str:
    out = []
    for key, label in (
        ("history_length", "training items per user"),
        ("target_popularity", "training interactions of the target item"),
    ):
        fig, ax = _figure(width=7.0)
        names = list(runs)
        buckets = list(runs[names[0]]["buckets"][key])
        x = np.arange(len(buckets))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            vals = [runs[name]["buckets"][key][b]["ndcg@10"] for b in buckets]
            ax.bar(x + i * width, vals, width, label=name)
        users = [runs[names[0]]["buckets"][key][b]["users"] for b in buckets]
        ax.set_xticks(x + width * (len(names) - 1) / 2)
        ax.set_xticklabels(
            [f"{b}\n({u:,} users)" for b, u in zip(buckets, users, strict=True)], fontsize=8
        )
        ax.set_xlabel(label)
        ax.set_ylabel("test NDCG@10")
        ax.legend()
        out.append(png(fig))
    return "".join(out)


def _popularity(dataset: str | Path, synthetic: str | Path) -> str:
    import pandas as pd

    from augrec.augment.synthetic_set import SET_FILE
    from augrec.data.loaders import load_dataset
    from augrec.steps import dataset_path

    real = load_dataset(dataset_path(dataset)).interactions["item_id"].value_counts()
    synth = pd.read_parquet(Path(synthetic) / SET_FILE, columns=["item_id"])["item_id"]
    if synth.empty:
        return "<p>The synthetic set is empty.</p>"
    fig, ax = _figure()
    ax.loglog(np.arange(1, len(real) + 1), real.to_numpy() / real.sum(), label="real")
    counts = synth.value_counts()
    ax.loglog(np.arange(1, len(counts) + 1), counts.to_numpy() / counts.sum(), label="synthetic")
    ax.set_xlabel("item rank (by its own frequency)")
    ax.set_ylabel("share of interactions")
    ax.legend()
    fig2, ax2 = _figure()
    ranked = real.index.to_numpy()
    share = counts.reindex(ranked).fillna(0).to_numpy() / counts.sum()
    ax2.plot(np.cumsum(real.to_numpy()) / real.sum(), label="real")
    ax2.plot(np.cumsum(share), label="synthetic")
    ax2.set_xlabel("items, most popular (in the real log) first")
    ax2.set_ylabel("cumulative share of interactions")
    ax2.legend()
    return png(fig) + png(fig2)
