"""The one `augrec` command line; every entrypoint (RayJob, kfp component, container) uses it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from augrec.errors import AugrecError
from augrec.features.cli import features_app
from augrec.registry.cli import gate, models_app
from augrec.serving.cli import serve

app = typer.Typer(
    help="augrec: train, evaluate and serve recommenders, and measure honestly whether "
    "GAN-written synthetic behaviour helps them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Generate, validate and inspect interaction data.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.command("gate")(gate)
app.command("serve")(serve)

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
        handlers=[RichHandler(show_path=False, console=_console(stderr=True))],
        force=True,
    )


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output (CI logs, `| tee`) would otherwise wrap tables at 80 columns.
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def _progress():
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
        console=_console(stderr=True),
        transient=True,
        # Bars only on a terminal; piped logs get the log lines instead of redraw noise.
        disable=not sys.stderr.isatty(),
    )


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
    log.info(
        "wrote %d interactions (%d users, %d items) to %s",
        len(interactions),
        interactions["user_id"].nunique(),
        len(item_table),
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
    from augrec.data.loaders import load_dataset

    ds = load_dataset(path, fmt)
    _print_mapping(f"{path}: valid", ds.summary())


def _print_mapping(title: str, mapping: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for k, v in mapping.items():
        table.add_row(str(k), str(v))
    _console().print(table)


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


def _ray_config(num_workers, use_gpu, cpus_per_worker, ray_address, max_failures, ray_storage):
    from augrec.training.ray_train import RayConfig

    return RayConfig(
        num_workers=num_workers,
        use_gpu=use_gpu,
        cpus_per_worker=cpus_per_worker,
        ray_address=ray_address,
        max_failures=max_failures,
        storage_path=str(ray_storage.resolve()) if ray_storage else None,
    )


@app.command("train")
def train(
    data: Annotated[
        Path, typer.Option("--data", help="Interactions file (any supported format) or directory.")
    ],
    model: Annotated[str, typer.Option("--model", help="popularity, itemknn or sasrec.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to write (atomically).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML with split:, eval: and model: sections."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda for gradient-trained models (sasrec).")
    ] = None,
    augment: Annotated[
        Path | None,
        typer.Option(help="Synthetic set from `augrec augment`: train on real + synthetic."),
    ] = None,
    num_workers: NumWorkers = 0,
    use_gpu: UseGpu = False,
    cpus_per_worker: CpusPerWorker = 1.0,
    ray_address: RayAddress = None,
    max_failures: MaxFailures = 2,
    ray_storage: RayStorage = None,
) -> None:
    """Train on the training split, select on validation, evaluate once on test.

    Writes OUT/metrics.json (test, valid and bucket metrics, timings),
    OUT/recommendations.parquet (top-20 per test user, original ids, seen items excluded),
    OUT/model.pt and OUT/config.json. Nothing is written if anything fails.
    """
    from augrec.config import load_train_config
    from augrec.training.run import train_and_evaluate, write_run

    cfg = load_train_config(config)
    if device is not None:
        cfg.model["device"] = device
    if out.exists() and not overwrite:
        raise AugrecError(f"--out: '{out}' already exists (pass --overwrite to replace it)")
    ray_cfg = _ray_config(
        num_workers, use_gpu, cpus_per_worker, ray_address, max_failures, ray_storage
    )
    with _progress() as progress:
        result = train_and_evaluate(
            data, model, cfg, seed=seed, progress=progress, ray_cfg=ray_cfg, augment=augment
        )
    write_run(result, out, cfg, overwrite=overwrite)
    metrics = result.metrics()
    print_metrics_table([metrics])
    log.info("wrote %s", out)


@app.command("augment")
def augment_cmd(
    data: Annotated[Path, typer.Option("--data", help="Interactions file or directory.")],
    method: Annotated[
        str, typer.Option(help="none | heuristic | mle | gan (see docs/augmentation.md).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Directory for the synthetic set.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML with split: and augment: sections (AugmentConfig: who to extend, "
            "how many items, temperature, virtual users, share cap, generator, adversarial).",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit non-zero when a privacy gate of the report fails.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    num_workers: NumWorkers = 0,
    use_gpu: UseGpu = False,
    cpus_per_worker: CpusPerWorker = 1.0,
    ray_address: RayAddress = None,
    max_failures: MaxFailures = 2,
    ray_storage: RayStorage = None,
) -> None:
    """Write synthetic user behaviour for the training split, and a report on it.

    The generator learns from training interactions only and never writes an item the user
    has anywhere in the real log. OUT gets synthetic.parquet (original ids), synthetic.json,
    synthetic_report.json and .html (fidelity, diversity, privacy), and generator.pt.
    Use it with `augrec train ... --augment OUT`.
    """
    import yaml

    from augrec.augment.outputs import build_report, write_augmentation
    from augrec.augment.pipeline import METHODS, AugmentConfig
    from augrec.config import SplitConfig
    from augrec.data.loaders import load_dataset
    from augrec.data.splits import make_split

    if method not in METHODS:
        raise AugrecError(f"--method: unknown value {method!r}; expected one of {list(METHODS)}")
    if out.exists() and not overwrite:
        raise AugrecError(f"--out: '{out}' already exists (pass --overwrite to replace it)")
    raw = yaml.safe_load(config.read_text()) if config else {}
    try:
        split_cfg = SplitConfig(**(raw.get("split") or {}))
        aug_cfg = AugmentConfig(**{**(raw.get("augment") or {}), "method": method})
    except Exception as exc:
        raise AugrecError(f"--config: {exc}") from exc
    ds = load_dataset(data)
    split = make_split(ds, split_cfg.kind, split_cfg.test_cutoff, split_cfg.valid_cutoff)
    from augrec.augment.pipeline import augment

    ray_cfg = _ray_config(
        num_workers, use_gpu, cpus_per_worker, ray_address, max_failures, ray_storage
    )
    synth, info = augment(split, aug_cfg, seed=seed, ray=(data, split_cfg, ray_cfg))
    synth.meta["data"] = str(data)
    report = build_report(split, synth, info, seed)
    write_augmentation(out, split, synth, info, report, overwrite)
    from augrec.augment.report import privacy_failures

    failures = privacy_failures(report)
    _print_mapping(
        f"synthetic set ({method})",
        {
            "synthetic interactions": synth.n_interactions,
            "users extended": len(synth.prefixes),
            "extra sequences": len(synth.extra),
            "synthetic share": f"{synth.share(split):.3f}",
            "privacy gates": "passed" if not failures else "FAILED: " + "; ".join(failures),
            "written to": str(out),
        },
    )
    if strict and failures:
        raise AugrecError("--strict: privacy gate failed: " + "; ".join(failures))


def print_metrics_table(runs: list[dict[str, Any]]) -> None:
    """Test metrics of one or more runs, side by side."""
    from rich.table import Table

    cols = ["ndcg@10", "hr@10", "ndcg@20", "hr@20", "mrr@10", "coverage@10", "tail_share@10"]
    table = Table(title=f"test metrics ({runs[0]['dataset']}, {runs[0]['protocol']})")
    table.add_column("model")
    for c in cols:
        table.add_column(c, justify="right")
    table.add_column("valid ndcg@10", justify="right")
    table.add_column("train s", justify="right")
    for m in runs:
        table.add_row(
            m["model"],
            *(f"{m['test'][c]:.4f}" for c in cols),
            f"{m['valid']['ndcg@10']:.4f}",
            f"{m['seconds']['train']:.1f}",
        )
    _console().print(table)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Where the demo data and runs go.")] = Path(
        "runs/demo"
    ),
    users: Annotated[int, typer.Option(help="Synthetic users.")] = 5000,
    items: Annotated[int, typer.Option(help="Synthetic items.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for data and models.")] = 0,
) -> None:
    """The main job as it stands: generate demo data, train and evaluate every model.

    Replaces OUT. Prints a comparison table; each model's run directory is OUT/<model>.
    """
    from augrec.config import TrainConfig
    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.io import atomic_dir
    from augrec.models import available_models
    from augrec.training.run import train_and_evaluate, write_run

    interactions, item_table = generate(SyntheticConfig(users=users, items=items, seed=seed))
    data_dir = out / "synthetic"
    with atomic_dir(data_dir, overwrite=True) as tmp:
        interactions.to_parquet(tmp / "interactions.parquet", index=False)
        item_table.to_parquet(tmp / "items.parquet", index=False)
    log.info("demo data: %d interactions in %s", len(interactions), data_dir)
    # Demo-sized settings; an empty config searches each model's grid on validation.
    demo_params = {"sasrec": {"epochs": 30, "eval_every": 2, "patience": 3}}
    runs = []
    for name in available_models():
        cfg = TrainConfig(model=demo_params.get(name, {}))
        with _progress() as progress:
            result = train_and_evaluate(data_dir, name, cfg, seed=seed, progress=progress)
        write_run(result, out / name, cfg, overwrite=True)
        runs.append(result.metrics())
    print_metrics_table(runs)
    log.info("runs written under %s", out)


def main() -> None:
    """Console entry point: user errors print one clear message and exit 2, no traceback."""
    from rich.text import Text

    try:
        app()
    except (AugrecError, FileExistsError) as exc:
        # Text, not markup: messages contain "[null]"-style tags and user data.
        _console(stderr=True).print(Text("error: ", style="bold red") + Text(str(exc)))
        sys.exit(2)


if __name__ == "__main__":
    main()
