"""What the command groups share: consoles, progress bars, tables and the common options."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from augrec.training.ray_train import RayConfig


def console(stderr: bool = False) -> Console:
    """A rich console; piped output keeps long lines instead of wrapping at 80 columns."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def progress() -> Progress:
    """Progress bars with elapsed time and ETA, on a terminal only.

    Piped logs (CI, `| tee`, a kfp step's log) get the log lines instead of redraw noise.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


def reflow(text: str) -> str:
    """Join a docstring's wrapped lines so rich re-wraps each paragraph to the terminal.

    In rich markup mode typer keeps every newline of a docstring, so source-wrapped lines come
    out ragged. Paragraphs (blank-line separated) and list items (`- `) stay apart.
    """
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(re.sub(r"\n(?!\s*- )\s*", " ", p) for p in paragraphs)


def reflow_help(app: typer.Typer) -> typer.Typer:
    """Apply `reflow` to the help of `app`, its commands and its sub-apps, recursively."""
    for cmd in app.registered_commands:
        doc = cmd.help or inspect.getdoc(cmd.callback) or ""
        cmd.help = reflow(doc)
    for group in app.registered_groups:
        sub = group.typer_instance
        if sub is None:
            continue
        reflow_help(sub)
        if group.help:
            group.help = reflow(group.help)
    if isinstance(app.info.help, str):
        app.info.help = reflow(app.info.help)
    return app


def flags_without_type_placeholder() -> None:
    """Show flags as `--overwrite` instead of `--overwrite <bool>` in rich help.

    typer's rich help prints a `<type>` column for every option, flags included (its plain
    help does not); a flag takes no value, so the placeholder only misleads.
    """
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_augrec", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):  # noqa: ANN001, ANN202 - typer's signature
        return None if self.is_flag else original(self, ctx)

    display_type_rich._augrec = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def print_mapping(title: str, mapping: dict[str, Any]) -> None:
    """A two-column table of names and values."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for k, v in mapping.items():
        table.add_row(str(k), str(v))
    console().print(table)


def print_metrics_table(runs: list[dict[str, Any]], names: list[str] | None = None) -> None:
    """Test metrics of one or more runs (`metrics.json` documents), side by side."""
    from rich.table import Table

    cols = ["ndcg@10", "hr@10", "ndcg@20", "hr@20", "mrr@10", "coverage@10", "tail_share@10"]
    table = Table(title=f"test metrics ({runs[0]['dataset']}, {runs[0]['protocol']})")
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    table.add_column("valid ndcg@10", justify="right")
    table.add_column("train s", justify="right")
    for i, m in enumerate(runs):
        table.add_row(
            names[i] if names else m["model"],
            *(f"{m['test'][c]:.4f}" for c in cols),
            f"{m['valid']['ndcg@10']:.4f}",
            f"{m['seconds']['train']:.1f}",
        )
    console().print(table)


Home = Annotated[
    str | None,
    typer.Option(
        "--home",
        help="The registry: a BentoML home (default: $BENTOML_HOME, else ~/bentoml) or an "
        "object-storage URI such as s3://bucket/registry (see docs/registry.md).",
        envvar=["AUGREC_REGISTRY", "BENTOML_HOME"],
        show_default=False,
    ),
]

_RAY = "Distributed (Ray Train)"
NumWorkers = Annotated[
    int,
    typer.Option(
        "--num-workers",
        help="Ray Train data-parallel workers; 0 trains in this process without Ray.",
        rich_help_panel=_RAY,
    ),
]
UseGpu = Annotated[bool, typer.Option(help="One GPU per worker (nccl).", rich_help_panel=_RAY)]
CpusPerWorker = Annotated[float, typer.Option(help="CPUs per worker.", rich_help_panel=_RAY)]
RayAddress = Annotated[
    str | None,
    typer.Option(
        help="Existing Ray cluster (ray://head:10001 or auto); default: start a local one.",
        rich_help_panel=_RAY,
    ),
]
MaxFailures = Annotated[
    int,
    typer.Option(
        help="Worker failures to recover from (resuming from the last checkpoint).",
        rich_help_panel=_RAY,
    ),
]
RayStorage = Annotated[
    Path | None,
    typer.Option(
        help="Where Ray Train keeps checkpoints (default ~/ray_results).", rich_help_panel=_RAY
    ),
]

RayStaging = Annotated[
    str | None,
    typer.Option(
        "--ray-staging",
        help="Object-storage URI (s3://bucket/prefix) the driver uploads local data to, so "
        "workers on other nodes read it by URI (needs AUGREC_S3_ENDPOINT_URL / AWS_* there too).",
        envvar="AUGREC_RAY_STAGING",
        rich_help_panel=_RAY,
    ),
]


def ray_config(
    num_workers: int,
    use_gpu: bool,
    cpus_per_worker: float,
    ray_address: str | None,
    max_failures: int,
    ray_storage: Path | None,
    ray_staging: str | None = None,
) -> RayConfig:
    """The typed Ray Train settings from the shared options."""
    from augrec.training.ray_train import RayConfig

    return RayConfig(
        num_workers=num_workers,
        use_gpu=use_gpu,
        cpus_per_worker=cpus_per_worker,
        ray_address=ray_address,
        max_failures=max_failures,
        storage_path=str(ray_storage.resolve()) if ray_storage else None,
        staging=ray_staging,
    )
