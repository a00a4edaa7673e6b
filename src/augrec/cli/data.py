"""`augrec data ...`: generate, validate and summarise interaction data."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from augrec.cli.common import console, print_mapping

log = logging.getLogger("augrec")
data_app = typer.Typer(help="Generate and validate interaction data.", no_args_is_help=True)


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write.")],
    users: Annotated[int, typer.Option(help="Number of users.", min=10)] = 2000,
    items: Annotated[int, typer.Option(help="Number of items.", min=20)] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Write seeded synthetic e-commerce data: interactions.parquet and items.parquet.

    Power-law popularity and activity, categories/brands/prices, co-purchase chains and
    category loyalty, so a sequential model can beat popularity. Use OUT as --data.
    """
    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.io import atomic_dir

    interactions, item_table = generate(SyntheticConfig(users=users, items=items, seed=seed))
    with atomic_dir(out, overwrite=overwrite) as tmp:
        interactions.to_parquet(tmp / "interactions.parquet", index=False)
        item_table.to_parquet(tmp / "items.parquet", index=False)
    # Items never drawn stay in the catalog (items.parquet); validate and train count only
    # items with interactions, so both numbers are given.
    log.info(
        "wrote %d interactions (%d users; %d catalog items, %d with interactions) to %s",
        len(interactions),
        interactions["user_id"].nunique(),
        len(item_table),
        interactions["item_id"].nunique(),
        out,
    )


@data_app.command("validate")
def data_validate(
    path: Annotated[Path, typer.Argument(help="Interactions file or a directory holding one.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="augrec | amazon-seq | diginetica (default: detect)."),
    ] = None,
) -> None:
    """Check a file against the data contract and print its summary.

    Exits non-zero with one message per problem kind (with counts and example rows).
    """
    from rich.text import Text

    from augrec.data.loaders import load_dataset

    ds = load_dataset(path, fmt)
    # The path as a line, not a table title: a title wraps mid-word to the table's width.
    console().print(Text(f"{path}: valid"))
    print_mapping("summary", ds.summary())
