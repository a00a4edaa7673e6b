"""The one `augrec` command line; every entrypoint (RayJob, kfp component, container) uses it.

Each command group lives in its own module of this package; `common` holds what they share.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from augrec.cli.common import console, flags_without_type_placeholder, reflow_help
from augrec.cli.data import data_app
from augrec.cli.features import features_app
from augrec.cli.models import gate, models_app
from augrec.cli.pipeline import pipeline_app
from augrec.cli.pipeline import run as run_cmd
from augrec.cli.search import search
from augrec.cli.serve import serve
from augrec.cli.train import augment_cmd, train
from augrec.errors import AugrecError

app = typer.Typer(
    help="augrec: train, evaluate and serve recommenders, and measure honestly whether "
    "GAN-written synthetic behaviour helps them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.command("run")(run_cmd)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.command("train")(train)
app.command("augment")(augment_cmd)
app.command("gate")(gate)
app.command("serve")(serve)
app.command("search")(search)
reflow_help(app)
flags_without_type_placeholder()

log = logging.getLogger("augrec")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")] = False,
) -> None:
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, console=console(stderr=True))],
        force=True,
    )


def main() -> None:
    """Console entry point: user errors print one clear message and exit 2, no traceback."""
    from rich.text import Text

    try:
        app()
    except (AugrecError, FileExistsError) as exc:
        # Text, not markup: messages contain "[null]"-style tags and user data.
        console(stderr=True).print(Text("error: ", style="bold red") + Text(str(exc)))
        sys.exit(2)


if __name__ == "__main__":
    main()
