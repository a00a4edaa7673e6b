"""`augrec run` (the pipeline on this machine) and `augrec pipeline compile|submit|step`."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from augrec.cli.common import (
    CpusPerWorker,
    Home,
    NumWorkers,
    RayAddress,
    UseGpu,
    console,
    print_mapping,
    print_metrics_table,
)
from augrec.errors import AugrecError, ConfigError

log = logging.getLogger("augrec")
pipeline_app = typer.Typer(
    help="The Kubeflow pipeline: compile it to YAML, submit it to a Kubeflow Pipelines "
    "cluster. [cyan]augrec run[/] runs the same pipeline on this machine.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class Method(StrEnum):
    """`--augment` values."""

    none = "none"
    heuristic = "heuristic"
    mle = "mle"
    gan = "gan"
    auto = "auto"


_FEAST = "Feature store (Feast)"
FeatureRepo = Annotated[
    Path,
    typer.Option(
        "--feature-repo",
        help="Feast repo the run loads and trains from (serving reads the same store).",
        envvar="AUGREC_FEATURE_REPO",
        rich_help_panel=_FEAST,
    ),
]
FeatureEnv = Annotated[
    str,
    typer.Option(
        "--feature-env",
        help="Store environment: local (SQLite) or e.g. redis.",
        envvar="AUGREC_FEATURE_ENV",
        rich_help_panel=_FEAST,
    ),
]


def default_cache() -> Path:
    """Where kfp.local keeps step results between runs (`AUGREC_CACHE_DIR` overrides)."""
    base = os.environ.get("AUGREC_CACHE_DIR") or Path.home() / ".cache" / "augrec"
    return Path(base) / "kfp-local"


def run(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Interactions (any format `augrec data validate` reads). Default: generate "
            "the seeded synthetic demo data into OUT/demo.",
            show_default=False,
        ),
    ] = None,
    augment: Annotated[
        Method,
        typer.Option(
            "--augment",
            help="Synthetic data: none, heuristic, mle, gan, or auto (train with and without "
            "it, keep it only if validation NDCG@10 improves). See docs/augmentation.md.",
        ),
    ] = Method.none,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML with split:, eval:, model:, refit:, augment: and gate: sections. "
            "Default: the best measured SASRec settings (docs/benchmarks.md).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder (default runs/run-<time>).", show_default=False),
    ] = None,
    model: Annotated[str, typer.Option(help="popularity, itemknn or sasrec.")] = "sasrec",
    seed: Annotated[int, typer.Option(help="Seed for the data, the models and the split.")] = 0,
    users: Annotated[int, typer.Option(help="Demo data: users.", min=10)] = 3000,
    items: Annotated[int, typer.Option(help="Demo data: items.", min=20)] = 1500,
    feature_repo: FeatureRepo = Path("feature_repo"),
    feature_env: FeatureEnv = "local",
    home: Home = None,
    alias: Annotated[str, typer.Option(help="Alias the deploy step moves.")] = "production",
    cache: Annotated[
        bool, typer.Option(help="Reuse the results of steps whose inputs did not change.")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    num_workers: NumWorkers = 0,
    use_gpu: UseGpu = False,
    cpus_per_worker: CpusPerWorker = 1.0,
    ray_address: RayAddress = None,
) -> None:
    """Run the whole pipeline here: ingest, Feast, (augment), train, gate, register, deploy.

    The same Kubeflow pipeline [cyan]augrec pipeline compile[/] sends to a cluster, run by
    kfp.local, each step a process whose log streams below. OUT gets report.html (gate
    checks, the augmentation choice, metrics, training curves, buckets), model/ (the run
    directory that was gated), run.json and steps/ (every step's outputs). When the gate
    passes, the model is registered and promoted: [cyan]augrec serve[/] answers from it.
    A gate rejection exits 1 with the failed checks; nothing is promoted.
    """
    import shutil

    from augrec.config import load_run_config
    from augrec.pipelines.local import read_outputs, run_local
    from augrec.steps import source_fingerprint

    cfg = load_run_config(config)
    repo = feature_repo.resolve()
    if not (repo / "feature_store.yaml").exists():
        raise ConfigError(f"--feature-repo: {repo} is not a Feast repo (no feature_store.yaml)")
    out = out or Path("runs") / datetime.now().strftime("run-%Y%m%d-%H%M%S")
    if out.exists():
        if not overwrite:
            raise ConfigError(f"--out: '{out}' already exists (pass --overwrite to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if data is None:
        data = _demo_data(out / "demo", users, items, seed)
    arguments: dict[str, Any] = {
        "data": str(data.resolve()),
        "data_fingerprint": source_fingerprint(data),
        "augment": augment.value,
        "model": model,
        "train_config": cfg.train_section(),
        "augment_config": cfg.augment_section(),
        "gate_config": cfg.gate,
        "seed": seed,
        "feature_repo": str(repo),
        "feature_env": feature_env,
        "registry_home": str(home) if home else "",
        "alias": alias,
        "ray": {
            "num_workers": num_workers,
            "use_gpu": use_gpu,
            "cpus_per_worker": cpus_per_worker,
            "ray_address": ray_address,
        },
    }
    arguments = _no_none(arguments)
    log.info("running the pipeline on %s (augment=%s, model=%s) into %s", data, augment, model, out)
    result = run_local(arguments, out, cache_root=default_cache() if cache else None)
    gated = result.output("gate", "gated")
    if result.succeeded:
        from augrec import rundir

        selection = read_outputs(result, "select") or {}
        tag = read_outputs(result, "register")
        print_metrics_table([rundir.read_metrics(gated)], names=[f"{model} ({_chosen(selection)})"])
        print_mapping(
            "run",
            {
                "augmentation": _choice_line(selection),
                "gate": "passed",
                "registered": tag,
                "promoted": f"{alias} -> {tag}",
                "report": out / "report.html",
                "took": f"{result.seconds:.0f}s",
                "serve it": "augrec serve" + (f" --home {home}" if home else ""),
            },
        )
        return
    if result.failed_task and result.failed_task.startswith("reject") and gated is not None:
        from augrec import rundir
        from augrec.cli.models import print_verdict

        verdict = rundir.read_json(gated, rundir.GATE)
        print_verdict(verdict, title="the validation gate rejected the model: nothing promoted")
        console(stderr=True).print(f"report: {out / 'report.html'}")
        raise typer.Exit(code=1)
    raise AugrecError(
        f"the pipeline stopped at step {result.failed_task!r}; nothing after it ran (its log "
        f"is above). Outputs so far: {out}"
    )


def _no_none(obj: Any) -> Any:
    """Drop None values: kfp parameters hold no null (the step's defaults apply)."""
    if isinstance(obj, dict):
        return {k: _no_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_no_none(v) for v in obj]
    return obj


def _chosen(selection: dict[str, Any]) -> str:
    return "augmented" if selection.get("chosen") == "augmented" else "real data only"


def _choice_line(selection: dict[str, Any]) -> str:
    if selection.get("method") in (None, "none"):
        return "none"
    return (
        f"{selection['method']}: valid NDCG@10 {selection.get('augmented', 0):.4f} with, "
        f"{selection.get('baseline', 0):.4f} without -> kept {_chosen(selection)}"
    )


def _demo_data(out: Path, users: int, items: int, seed: int) -> Path:
    from augrec.data.synthetic import SyntheticConfig, generate
    from augrec.io import atomic_dir

    interactions, item_table = generate(SyntheticConfig(users=users, items=items, seed=seed))
    with atomic_dir(out, overwrite=True) as tmp:
        interactions.to_parquet(tmp / "interactions.parquet", index=False)
        item_table.to_parquet(tmp / "items.parquet", index=False)
    log.info("demo data: %d interactions, %d users -> %s", len(interactions), users, out)
    return out


@pipeline_app.command("compile")
def compile_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="YAML file to write.")] = Path(
        "pipeline.yaml"
    ),
    image: Annotated[
        str | None,
        typer.Option(help="Project image every step runs in (default: AUGREC_IMAGE or ours)."),
    ] = None,
    scale: Annotated[
        Path | None,
        typer.Option(
            help="YAML with PipelineScale values: light/train cpu and memory, gpus, retries.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compile the pipeline to Kubeflow Pipelines' YAML (loads with kfp's own loader)."""
    from augrec.config import load_yaml_config
    from augrec.pipelines.cluster import compile_pipeline
    from augrec.pipelines.training import PipelineScale

    sizes = load_yaml_config(scale, PipelineScale, "--scale") if scale else PipelineScale()
    typer.echo(f"wrote {compile_pipeline(out, image, sizes)}")


@pipeline_app.command("submit")
def submit_cmd(
    host: Annotated[str, typer.Option(help="Kubeflow Pipelines API endpoint (URL).")],
    package: Annotated[
        Path, typer.Option(help="Compiled pipeline (augrec pipeline compile).")
    ] = Path("pipeline.yaml"),
    experiment: Annotated[str, typer.Option(help="Experiment to file the run under.")] = "augrec",
    run_name: Annotated[str | None, typer.Option(help="Run name.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubeflow profile namespace.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Pipeline argument KEY=VALUE (repeatable; JSON values parse: seed=3, "
            'ray={"num_workers": 4, "use_gpu": true}). data= is required.',
        ),
    ] = None,
) -> None:
    """Submit the compiled pipeline to a Kubeflow Pipelines cluster; prints the run's URL."""
    from augrec.pipelines.cluster import parse_params, submit

    if not package.exists():
        raise ConfigError(f"--package: no such file: {package} (run `augrec pipeline compile`)")
    arguments = parse_params(param or [])
    if "data" not in arguments:
        raise ConfigError("--param: data=URI is required (where the pods read the data)")
    res = submit(package, host, arguments, experiment, run_name, namespace)
    typer.echo(f"submitted run {res['run_id']}: {res['url']}")


@pipeline_app.command("step", hidden=True)
def step_cmd(
    name: Annotated[str, typer.Argument(help="A function of augrec.steps.")],
    args: Annotated[str, typer.Option("--args", help="Its keyword arguments as JSON.")] = "{}",
) -> None:
    """Run one pipeline step in this process (the entrypoint of a step's RayJob)."""
    from augrec import steps

    func = getattr(steps, name, None)
    if name.startswith("_") or not callable(getattr(func, "__wrapped__", None)):
        raise ConfigError(f"step: unknown step {name!r}")
    try:
        kwargs = json.loads(args)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--args: not JSON: {exc}") from exc
    json.dump(func(**kwargs), sys.stdout, default=str)
    sys.stdout.write("\n")
