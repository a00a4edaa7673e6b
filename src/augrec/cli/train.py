"""`augrec train` and `augrec augment`: one run, or one synthetic set, from a data file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from augrec.cli.common import (
    CpusPerWorker,
    MaxFailures,
    NumWorkers,
    RayAddress,
    RayStaging,
    RayStorage,
    UseGpu,
    print_mapping,
    print_metrics_table,
    progress,
    ray_config,
)
from augrec.errors import AugrecError

log = logging.getLogger("augrec")


def train(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Interactions file (any supported format) or directory; a path or a URI "
            "such as s3://bucket/data/shop.",
        ),
    ],
    model: Annotated[str, typer.Option("--model", help="popularity, itemknn or sasrec.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory to write (atomically).")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML with split:, eval:, model:, selection:, refit:, titles: and augment: "
            "(augrec.config.TrainConfig; recipes: docs/augmentation.md).",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda for gradient-trained models (sasrec).")
    ] = None,
    augment: Annotated[
        Path | None,
        typer.Option(help="Synthetic set from `augrec augment`: train on real + synthetic."),
    ] = None,
    titles: Annotated[
        Path | None,
        typer.Option(
            "--titles",
            help="Item titles table (item_id, title) for a config with model.text; overrides "
            "the config's titles:.",
        ),
    ] = None,
    num_workers: NumWorkers = 0,
    use_gpu: UseGpu = False,
    cpus_per_worker: CpusPerWorker = 1.0,
    ray_address: RayAddress = None,
    max_failures: MaxFailures = 2,
    ray_storage: RayStorage = None,
    ray_staging: RayStaging = None,
) -> None:
    """Train on the training split, select on validation, evaluate once on test.

    A config's recipe settings (docs/augmentation.md, "Recipes") run here too: `augment:`
    generates a synthetic set in-process (written to OUT/augmentation/), `selection:` picks
    recipe values on validation, `eval.noisy_shares` adds the noisy-history test.

    Writes OUT/metrics.json (test, valid and bucket metrics, timings),
    OUT/recommendations.parquet (top-20 per test user, original ids, seen items excluded),
    OUT/model.pt and OUT/config.json. Nothing is written if anything fails.
    """
    from augrec.config import load_train_config
    from augrec.rundir import write_run
    from augrec.training.run import train_and_evaluate

    cfg = load_train_config(config)
    if device is not None:
        cfg.model["device"] = device
    if titles is not None:
        cfg.titles = str(titles)
    if out.exists() and not overwrite:
        raise AugrecError(f"--out: '{out}' already exists (pass --overwrite to replace it)")
    ray_cfg = ray_config(
        num_workers,
        use_gpu,
        cpus_per_worker,
        ray_address,
        max_failures,
        ray_storage,
        ray_staging,
    )
    with progress() as bars:
        result = train_and_evaluate(
            data, model, cfg, seed=seed, progress=bars, ray_cfg=ray_cfg, augment=augment
        )
    write_run(result, out, cfg, overwrite=overwrite)
    metrics = result.metrics()
    print_metrics_table([metrics])
    log.info("wrote %s", out)


def augment_cmd(
    data: Annotated[
        str, typer.Option("--data", help="Interactions file or directory (a path or a URI).")
    ],
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
    allow_privacy_failure: Annotated[
        bool,
        typer.Option(
            "--allow-privacy-failure",
            help="Exit 0 even when a privacy gate of the report fails (default: exit 2).",
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
    num_workers: NumWorkers = 0,
    use_gpu: UseGpu = False,
    cpus_per_worker: CpusPerWorker = 1.0,
    ray_address: RayAddress = None,
    max_failures: MaxFailures = 2,
    ray_storage: RayStorage = None,
    ray_staging: RayStaging = None,
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

    ray_cfg = ray_config(
        num_workers,
        use_gpu,
        cpus_per_worker,
        ray_address,
        max_failures,
        ray_storage,
        ray_staging,
    )
    from augrec.augment.pipeline import generator_text_for

    item_text = generator_text_for(ds.items, split, aug_cfg)
    synth, info = augment(
        split, aug_cfg, seed=seed, ray=(data, split_cfg, ray_cfg), item_text=item_text
    )
    synth.meta["data"] = str(data)
    report = build_report(split, synth, info, seed)
    write_augmentation(out, split, synth, info, report, overwrite)
    from augrec.augment.report import privacy_failures

    failures = privacy_failures(report)
    chosen = {}
    if "selected_step" in info:
        step = info["selected_step"]
        score = next(s["valid_ndcg@10"] for s in info["selection"] if s["step"] == step)
        chosen["chosen checkpoint"] = (
            f"step {step} of {[s['step'] for s in info['selection']]} "
            f"(selector valid ndcg@10 {score:.4f}; step 0 is the MLE generator)"
        )
    print_mapping(
        f"synthetic set ({method})",
        {
            **chosen,
            "synthetic interactions": synth.n_interactions,
            "users extended": len(synth.prefixes),
            "extra sequences": len(synth.extra),
            "synthetic share": f"{synth.share(split):.3f}",
            "privacy gates": "passed" if not failures else "FAILED: " + "; ".join(failures),
            "written to": str(out),
        },
    )
    if failures and not allow_privacy_failure:
        raise AugrecError(
            f"privacy gate failed: {'; '.join(failures)}. The set and its report are in {out} "
            "for inspection; pass --allow-privacy-failure to accept the set anyway."
        )
    if failures:
        log.warning("privacy gate failed, accepted by --allow-privacy-failure")
