"""`augrec features ...`: our Feast repo from the one CLI.

Ingest, plan, apply, materialize, and record and check a model's feature contract. The plain
`feast` CLI works in `feature_repo/` too.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

features_app = typer.Typer(
    help="The Feast feature repo: build its sources, register its definitions, load the "
    "online store and check a model's feature contract. Typical first run: "
    "[cyan]augrec features ingest --data DATA[/] then [cyan]apply[/] then [cyan]materialize[/].",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@features_app.callback()
def _quiet_feast() -> None:
    # Feast logs every registry refresh at INFO, which the CLI's INFO level would print.
    import logging

    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("feast").setLevel(logging.WARNING)


Repo = Annotated[
    Path,
    typer.Option(
        "--repo",
        help="Feast repo directory (holds feature_store.yaml).",
        envvar="AUGREC_FEATURE_REPO",
    ),
]
Env = Annotated[
    str,
    typer.Option(
        "--env",
        help="Store environment: [cyan]local[/] (feature_store.yaml: parquet + SQLite) or any "
        "feature_store.<env>.yaml, e.g. [cyan]redis[/] (needs AUGREC_REDIS_ENDPOINT).",
        envvar="AUGREC_FEATURE_ENV",
    ),
]
DEFAULT_REPO = Path("feature_repo")


class Against(StrEnum):
    """Which definitions `check` compares a model's contract with."""

    registry = "registry"
    repo = "repo"


def _out(text: str) -> None:
    typer.echo(text)


@features_app.command("ingest")
def ingest(
    data: Annotated[
        Path, typer.Option("--data", help="Interactions file (any supported format) or directory.")
    ],
    items: Annotated[
        Path | None,
        typer.Option(
            "--items",
            help="Items table (item_id, category, brand, price); default: the one found "
            "beside --data, if any.",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="augrec | amazon-seq | diginetica (default: detect)."),
    ] = None,
    repo: Repo = DEFAULT_REPO,
) -> None:
    """Write the offline sources (parquet) the feature views read, from an interaction log.

    One history row per user event, item popularity per item and event time, and item
    attributes. The sources directory ([cyan]<repo>/data/sources[/], or
    AUGREC_FEATURE_SOURCES) is replaced whole or not at all. Follow with
    [cyan]materialize[/] to refresh the online store.
    """
    from augrec.data.loaders import load_dataset, read_table
    from augrec.data.validate import validate_items
    from augrec.features import spec
    from augrec.features.ingest import build_sources, write_sources

    ds = load_dataset(data, fmt)
    item_table = ds.items
    if items is not None:
        item_table = validate_items(read_table(items), str(items))
    sources = build_sources(ds.interactions, item_table)
    out = write_sources(sources, spec.sources_dir(repo))
    _out(f"wrote {sources.summary()} to {out}")


@features_app.command("plan")
def plan(repo: Repo = DEFAULT_REPO, env: Env = "local") -> None:
    """Show what [cyan]apply[/] would change in the registry and the online store."""
    from augrec.features.store import open_store
    from augrec.features.store import plan as plan_changes

    _out(plan_changes(open_store(repo, env)))


@features_app.command("apply")
def apply(repo: Repo = DEFAULT_REPO, env: Env = "local") -> None:
    """Register the repo's entities, views and services; create the online tables.

    Same effect as [cyan]feast apply[/] in the repo. Objects removed from the repo are
    removed from the registry.
    """
    from augrec.features.store import apply as apply_changes
    from augrec.features.store import open_store

    _out(apply_changes(open_store(repo, env)))


@features_app.command("materialize")
def materialize(
    repo: Repo = DEFAULT_REPO,
    env: Env = "local",
    start: Annotated[
        datetime | None,
        typer.Option(help="Oldest row time to load (UTC); default: the sources' earliest."),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(help="Newest row time to load (UTC); default: the sources' latest."),
    ] = None,
    view: Annotated[
        list[str] | None,
        typer.Option("--view", help="Only this feature view (repeatable); default: all."),
    ] = None,
) -> None:
    """Load the newest feature row per user/item in [START, END] into the online store."""
    from augrec.features.store import materialize as load_online
    from augrec.features.store import open_store

    lo, hi = load_online(open_store(repo, env), start, end, view or None)
    _out(f"materialized {', '.join(view) if view else 'all views'} from {lo} to {hi}")


@features_app.command("record")
def record(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Run directory (writes features.json in it) or a .json file path."
        ),
    ],
    service: Annotated[
        list[str] | None,
        typer.Option("--service", help="FeatureService the model consumes (repeatable)."),
    ] = None,
    repo: Repo = DEFAULT_REPO,
    env: Env = "local",
) -> None:
    """Record a model's feature contract: each service's name, fingerprint and definitions.

    Run it when a model is trained on features from this store; [cyan]check[/] compares
    against it before serving.
    """
    from augrec.features import contract, spec
    from augrec.features.store import open_store

    store = open_store(repo, env)
    doc = contract.record(store, service or [spec.RECOMMENDER_SERVICE], store.config.project)
    path = contract.write(doc, out)
    for entry in doc["services"]:
        _out(f"{entry['name']}: {entry['fingerprint']}")
    _out(f"wrote {path}")


@features_app.command("check")
def check(
    model: Annotated[
        Path,
        typer.Option(
            "--model", help="Run directory holding features.json, or the contract JSON itself."
        ),
    ],
    repo: Repo = DEFAULT_REPO,
    env: Env = "local",
    against: Annotated[
        Against,
        typer.Option(
            help="[cyan]registry[/]: the applied definitions (what serving reads); "
            "[cyan]repo[/]: the repo's files, before apply (for CI)."
        ),
    ] = Against.registry,
) -> None:
    """Fail (exit 1) when the store's definitions differ from those the model was trained on.

    Names every change: views, features and types, entities, TTL, tags. A changed definition
    must ship under a new FeatureService version (e.g. recommender_v2).
    """
    from augrec.features import contract
    from augrec.features.store import open_store

    doc = contract.read(model)
    store = open_store(repo, env)
    defs = (
        contract.registry_definitions(store)
        if against == Against.registry
        else contract.repo_definitions(store)
    )
    problems = contract.check(defs, doc)
    names = ", ".join(e["name"] for e in doc["services"])
    if problems:
        typer.echo(
            f"feature contract of {model} does NOT match the {against.value} of {repo}:", err=True
        )
        for p in problems:
            typer.echo(f"- {p}", err=True)
        raise typer.Exit(code=1)
    _out(f"ok: {names} match the {against.value} of {repo}")
