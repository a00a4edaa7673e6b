"""`augrec search`: a quick look at product search on a model, and (re)building its index."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from augrec.cli.common import Home, console
from augrec.errors import ConfigError

log = logging.getLogger("augrec")


def build_index(
    run: Path,
    data: Path,
    titles: Path | None,
    attributes: Path | None,
    params_from: Path | None,
    cache_dir: Path | None = None,
) -> Path:
    """Build the search index of `data`'s catalog for the model in `run`, into the run."""
    from augrec import rundir
    from augrec.data.loaders import load_dataset
    from augrec.search.build import build_run_index
    from augrec.search.catalog import read_attribute_names
    from augrec.search.index import SearchParams

    _, item_ids = rundir.load_model(run, device="cpu")
    ds = load_dataset(data, titles=titles)
    attrs = read_attribute_names(attributes) if attributes else None
    params = SearchParams()
    if params_from is not None:
        doc = json.loads(params_from.read_text())
        chosen = doc.get("params", doc)
        params = SearchParams(**(chosen[0] if isinstance(chosen, list) else chosen))
    path = build_run_index(run, ds, item_ids, attrs, params, cache_dir=cache_dir)
    if path is None:
        raise ConfigError(f"--build-from: {data} has no item titles, brands or categories")
    return path


def search(
    query: Annotated[str | None, typer.Argument(help="What a shopper would type.")] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="A registered version (alias, tag, name or version) or a run directory. "
            "Default: the [cyan]production[/] alias, else the newest registered version.",
            show_default=False,
        ),
    ] = None,
    user: Annotated[
        int | None, typer.Option("--user", help="Personalise for this user (history: Feast).")
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="How many items.")] = 10,
    build_from: Annotated[
        Path | None,
        typer.Option(
            "--build-from",
            help="(Re)build the run directory's search index from this data file first.",
        ),
    ] = None,
    titles: Annotated[
        Path | None, typer.Option("--titles", help="item_id/title table for --build-from.")
    ] = None,
    attributes: Annotated[
        Path | None,
        typer.Option("--attributes", help="attribute_id/name[/kind] table (Amazon data)."),
    ] = None,
    params_from: Annotated[
        Path | None,
        typer.Option(
            "--params-from",
            help="JSON with the weights chosen on validation (benchmarks/search.py's "
            "metrics.json); default: SearchParams' defaults.",
        ),
    ] = None,
    feature_repo: Annotated[
        Path,
        typer.Option(
            "--feature-repo", help="Feast repo (user histories).", envvar="AUGREC_FEATURE_REPO"
        ),
    ] = Path("feature_repo"),
    home: Home = None,
) -> None:
    """Search a model's catalog: [cyan]augrec search --model VERSION "matte red lipstick"[/].

    With [cyan]--user[/] the results are re-ranked by that user's sequence model score
    (history from the Feast online store); without it, the unpersonalised ranking. The
    index is the run's search_index.zip; [cyan]--build-from DATA[/] (re)builds it.
    """
    from rich.table import Table

    from augrec.serving import schemas as s
    from augrec.serving.config import ServingConfig
    from augrec.serving.loading import describe
    from augrec.serving.recommender import ServingRecommender

    version, path = describe(model, home)
    if build_from is not None:
        if not version.startswith("run:"):
            raise ConfigError("--build-from: pass a run directory as --model (versions are frozen)")
        log.info("wrote %s", build_index(path, build_from, titles, attributes, params_from))
    if query is None:
        if build_from is None:
            raise ConfigError("QUERY: give a query (or --build-from to build the index only)")
        return
    repo = str(feature_repo.resolve()) if feature_repo.exists() else None
    rec = ServingRecommender.load(
        ServingConfig(
            model=str(path) if version.startswith("run:") else version,
            home=str(home) if home is not None else None,
            feature_repo=repo,
            batching=False,
        )
    )
    out = rec.search(s.SearchRequest(query=query, user_id=user, k=k))
    cat = rec.search_index.catalog
    codes = {int(i): n for n, i in enumerate(cat.item_ids)}
    mode = "personalised" if out.personalized else f"not personalised ({out.fallback_reason})"
    table = Table(title=f"{query!r} on {out.model_version}, {mode}")
    for col in ("#", "item_id", "score", "title", "brand", "categories"):
        table.add_column(col)
    for n, item in enumerate(out.items, start=1):
        c = codes[item.item_id]
        table.add_row(
            str(n),
            str(item.item_id),
            f"{item.score:.4f}",
            cat.titles[c][:70],
            cat.brands[c],
            " > ".join(cat.categories[c]),
        )
    console().print(table)
