"""Render a synthetic-data report dict as one self-contained HTML page.

Figures are drawn with matplotlib's object API (`Figure`, no pyplot) so rendering never
touches the process-wide backend, and are inlined as base64 PNGs so the page is one file
that can be attached to a run or opened from an artifact store.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

_COLORS = {
    "real_train": "#1f77b4",
    "synthetic": "#d62728",
    "holdout": "#2ca02c",
    "real_train_size_matched": "#9467bd",
    "synthetic_at_holdout_size": "#ff9896",
}
_LABELS = {
    "real_train": "real (training)",
    "synthetic": "synthetic",
    "holdout": "holdout (unseen real)",
    "real_train_size_matched": "real, size-matched",
    "synthetic_at_holdout_size": "synthetic at holdout size",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
td.desc { text-align: left; color: #555; max-width: 32em; }
.pass { background: #d8f5d0; }
.fail { background: #f9d0d0; }
.skip { background: #f5ecc8; }
.verdict { font-size: 1.3em; padding: 0.4em 0.8em; display: inline-block; border-radius: 4px; }
.figs img { max-width: 520px; margin: 0.3em; border: 1px solid #eee; }
"""


def fmt(v: Any) -> str:
    """A number or value as a table cell shows it (HTML-escaped)."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape(str(v))


def png(fig: Any) -> str:
    """A matplotlib figure as an inline `<img>` (base64 PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _figures(plots: dict[str, Any], dcr_note: str) -> list[str]:
    import numpy as np
    from matplotlib.figure import Figure

    out = []
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.add_subplot()
    for name, curve in plots["popularity_rank"].items():
        if curve["rank"]:
            ax.loglog(curve["rank"], curve["share"], label=_LABELS[name], color=_COLORS[name])
    ax.set(xlabel="item rank", ylabel="share of interactions", title="Item popularity by rank")
    ax.legend()
    out.append(png(fig))

    for key, title, xlabel, ylabel, log in (
        (
            "length_hist",
            "History length",
            "interactions per sequence",
            "share of sequences per unit length",
            True,
        ),
        (
            "dcr_hist",
            f"Distance to closest training record\n{dcr_note}",
            "Jaccard distance",
            "share of sampled sequences",
            False,
        ),
    ):
        fig = Figure(figsize=(5.5, 3.8))
        ax = fig.add_subplot()
        edges = np.asarray(plots[key]["edges"])
        for name, shares in plots[key].items():
            if name != "edges" and len(shares):
                ax.stairs(shares, edges, label=_LABELS[name], color=_COLORS[name], linewidth=1.8)
        if log:
            ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend()
        out.append(png(fig))

    mix = plots.get("category_mix")
    if mix:
        fig = Figure(figsize=(7.5, 3.8))
        ax = fig.add_subplot()
        sides = [k for k in mix if k != "groups"]
        x = np.arange(len(mix["groups"]))
        width = 0.8 / len(sides)
        for i, name in enumerate(sides):
            ax.bar(x + i * width, mix[name], width, label=_LABELS[name], color=_COLORS[name])
        ax.set_xticks(x + 0.4 - width / 2, mix["groups"], rotation=45, ha="right")
        ax.set(ylabel="share of interactions", title="Category mix (top groups by real share)")
        ax.legend()
        out.append(png(fig))
    return out


def _gate_table(report: dict[str, Any]) -> str:
    rows = []
    for name, g in report["gates"].items():
        status, cls = {True: ("pass", "pass"), False: ("FAIL", "fail")}.get(
            g["passed"], ("not run", "skip")
        )
        note = g.get("reason") or (
            f"holdout baseline {fmt(g['baseline'])}" if "baseline" in g else ""
        )
        rows.append(
            f'<tr class="{cls}"><td class="text">{html.escape(name)}</td><td>{fmt(g["value"])}'
            f"</td><td>{fmt(g['threshold'])}</td><td class='text'>{status}</td>"
            f'<td class="desc">{html.escape(note)}</td></tr>'
        )
    return (
        '<table id="gates"><tr><th class="text">gate</th><th>value</th><th>threshold</th>'
        '<th class="text">result</th><th class="text">note</th></tr>' + "".join(rows) + "</table>"
    )


def _side_by_side(section: dict[str, Any], prefix: str, descriptions: dict[str, str]) -> str:
    """Rows of metric -> {side: value}, one column per side, with the metric's description."""
    metrics = {k: v for k, v in section.items() if isinstance(v, dict)}
    sides = list(dict.fromkeys(s for v in metrics.values() for s in v))
    head = "".join(f"<th>{_LABELS.get(s, s)}</th>" for s in sides)
    rows = []
    for name, values in metrics.items():
        cells = "".join(f"<td>{fmt(values.get(s))}</td>" for s in sides)
        desc = html.escape(descriptions.get(f"{prefix}.{name}", ""))
        rows.append(f'<tr><td class="text">{name}</td>{cells}<td class="desc">{desc}</td></tr>')
    return (
        f'<table><tr><th class="text">metric</th>{head}<th class="text">meaning</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _diversity_table(div: dict[str, Any], descriptions: dict[str, str]) -> str:
    sides = list(div)
    metrics = list(next(iter(div.values())))
    transposed = {m: {s: div[s][m] for s in sides} for m in metrics}
    return _side_by_side(transposed, "diversity", descriptions)


def _flat_table(section: dict[str, Any] | None, prefix: str, descriptions: dict[str, str]) -> str:
    if not section:
        return "<p>Not computed (no inputs given).</p>"
    rows = []
    for name, v in section.items():
        # Descriptions are keyed by the metric; "synthetic_median" and "holdout_median" share one.
        base = name.removeprefix("synthetic_").removeprefix("holdout_")
        desc = descriptions.get(f"{prefix}.{name}") or descriptions.get(f"{prefix}.{base}", "")
        rows.append(
            f'<tr><td class="text">{name}</td><td>{fmt(v)}</td>'
            f'<td class="desc">{html.escape(desc)}</td></tr>'
        )
    return (
        '<table><tr><th class="text">metric</th><th>value</th><th class="text">meaning</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _dp_line(dp: dict[str, Any] | None) -> str:
    """Epsilon beside the gates: the guarantee the attack AUC is measured against."""
    if not dp:
        return "<p>Generator trained without differential privacy (no epsilon).</p>"
    return (
        f"<p>Generator trained with DP-SGD: epsilon {fmt(dp.get('epsilon'))} spent "
        f"(target {fmt(dp.get('target_epsilon'))}) at delta {fmt(dp.get('delta'))}, noise "
        f"multiplier {fmt(dp.get('noise_multiplier'))}, clipping norm "
        f"{fmt(dp.get('max_grad_norm'))}.</p>"
    )


def _baseline_note(report: dict[str, Any]) -> str:
    if report["privacy"]["exact_copy"].get("baseline") == "length_matched":
        return "(holdout: windows length-matched to the synthetic sequences)"
    return "(holdout: whole sequences)"


def render_html(report: dict[str, Any]) -> str:
    """The whole page: verdict, gate table, figures, then every number with its meaning."""
    desc = report["descriptions"]
    verdict = (
        '<span class="verdict pass">privacy gates: all passed</span>'
        if report["passed"]
        else '<span class="verdict fail">privacy gates: not all passed</span>'
    )
    counts = "".join(
        f"<tr><td class='text'>{_LABELS.get(k, k)}</td><td>{fmt(v['sequences'])}</td>"
        f"<td>{fmt(v['interactions'])}</td></tr>"
        for k, v in report["counts"].items()
    )
    privacy = report["privacy"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Synthetic data report</title><style>{STYLE}</style></head><body>",
        "<h1>Synthetic data report</h1>",
        f"<p>{verdict}</p>",
        "<h2>Privacy gates</h2>",
        _gate_table(report),
        _dp_line(privacy.get("dp")),
        "<h2>Data</h2><table><tr><th class='text'>set</th><th>sequences</th>"
        f"<th>interactions</th></tr>{counts}</table>",
        "<h2>Figures</h2><div class='figs'>",
        *_figures(report["plots"], _baseline_note(report)),
        "</div>",
        "<h2>Fidelity</h2><p>Each set against real training data. The holdout column is what "
        "real users the generator never saw score; distances shrink with sample size, so "
        "compare it with the synthetic sample of the same size.</p>",
        _side_by_side(report["fidelity"], "fidelity", desc),
        "<h2>Diversity</h2>",
        _diversity_table(report["diversity"], desc),
        "<h2>Privacy</h2><h3>Exact copies of training n-grams</h3>",
        _flat_table(privacy["exact_copy"], "privacy.exact_copy", desc),
        "<h3>Distance to closest record</h3>",
        _flat_table(privacy["dcr"], "privacy.dcr", desc),
        "<h3>Membership inference</h3>",
        _flat_table(privacy["mia"], "privacy.mia", desc),
        "<h3>Differential privacy of the generator</h3>",
        _flat_table(privacy.get("dp"), "privacy.dp", desc),
        "<h2>Configuration</h2>",
        _flat_table(report["config"], "config", desc),
        "</body></html>",
    ]
    return "\n".join(parts)
