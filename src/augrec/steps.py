"""The pipeline's steps as plain functions: each kfp component calls exactly one of these.

Every step takes paths (a kfp artifact's `.path`, a local folder, or a run directory) and plain
values, and returns a small JSON-able dict the component logs as metrics. Nothing here
imports kfp: the steps run and are tested without an orchestrator, and `augrec run` (kfp.local)
and a Kubeflow cluster run the same code.

Artifacts:
- dataset: the validated input files, copied under their own names, plus `dataset.json`
  (format, interactions file, content fingerprint, summary);
- features: `features.json`, the Feast contract the run trains on;
- model: a run directory (`augrec.rundir`);
- synthetic: a synthetic set (`augrec augment --out`), with `synthetic_report.html`.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from augrec import rundir
from augrec.errors import AugrecError, ConfigError
from augrec.io import atomic_dir, write_json

log = logging.getLogger("augrec.steps")
DATASET_INFO = "dataset.json"
AUGMENT_METHODS = ("none", "heuristic", "mle", "gan", "auto")
# What `auto` generates with: of the measured generators, the MLE one harmed least on Beauty
# (docs/benchmarks.md, augmentation ablation); `auto` keeps it only where validation improves.
AUTO_METHOD = "mle"


F = TypeVar("F", bound=Callable[..., Any])


class GateRejected(AugrecError):
    """The validation gate failed the candidate; nothing was registered or promoted."""


def step(func: F) -> F:
    """Log the step's start and its elapsed time; give a bare process (a kfp task) log lines.

    A kfp task is a fresh interpreter with no logging set up, and its stdout is the step's
    log (streamed by kfp.local, shown in the Kubeflow UI): without a handler, the per-epoch
    progress lines of training would be lost. A process that configured logging keeps its own.
    """

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        if not logging.getLogger().handlers:
            logging.basicConfig(
                level=logging.INFO,
                stream=sys.stdout,
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                datefmt="%H:%M:%S",
            )
            # Feast logs every registry refresh at INFO: noise in a step's log.
            logging.getLogger("feast").setLevel(logging.WARNING)
        t0 = time.perf_counter()
        log.info("step %s: started", func.__name__)
        out = func(*args, **kwargs)
        log.info("step %s: done in %.1fs", func.__name__, time.perf_counter() - t0)
        return out

    return run  # type: ignore[return-value]


# ---- ingest -------------------------------------------------------------------------------


@step
def ingest(
    data: str, out: str, fmt: str | None = None, expect_fingerprint: str | None = None
) -> dict[str, Any]:
    """Load and validate `data`; copy the files the loader read into `out` with `dataset.json`.

    A bad file raises `DataValidationError` (one message per problem kind) and writes nothing,
    so no later step runs. The copy keeps file names, so its fingerprint is the original's.
    `expect_fingerprint` (`source_fingerprint`, what the submitter hashed; also the step's
    cache key) must match: data changed between submission and run is an error, not a
    silently different run.
    """
    from augrec.data.loaders import load_dataset
    from augrec.registry.manifest import fingerprint_files

    if expect_fingerprint:
        found = source_fingerprint(data)
        if found != expect_fingerprint:
            raise ConfigError(
                f"data: {data} changed since the run was submitted (fingerprint "
                f"{found[7:19]} != {expect_fingerprint[7:19]}); submit it again"
            )
    ds = load_dataset(data, fmt)
    fp = fingerprint_files(ds.files)
    # Files sit in a folder named like the input's, so the dataset keeps its name (a folder
    # of interactions.parquet is named after the folder; Beauty.txt after its stem).
    folder = Path(ds.files[0]).parent.name if Path(data).is_dir() else ds.name
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / folder).mkdir()
        for f in ds.files:
            shutil.copy2(f, tmp / folder / Path(f).name)
        write_json(
            tmp / DATASET_INFO,
            {
                "name": ds.name,
                "format": ds.source_format,
                "interactions": f"{folder}/{Path(ds.files[0]).name}",
                "source": str(Path(data).resolve()),
                **fp,
                "summary": ds.summary(),
            },
        )
    log.info("ingested %s: %s", data, ds.summary())
    return {
        "users": ds.n_users,
        "items": ds.n_items,
        "interactions": len(ds.interactions),
        "fingerprint": fp["fingerprint"],
    }


def dataset_path(dataset: str | Path) -> Path:
    """The interactions file inside a dataset artifact (what `load_dataset` takes)."""
    info = _read(Path(dataset) / DATASET_INFO, "dataset artifact")
    return Path(dataset) / info["interactions"]


def _read(path: Path, what: str) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path.parent}: not a {what} (no {path.name})")
    return json.loads(path.read_text())


# ---- features -----------------------------------------------------------------------------


@step
def features(
    dataset: str, repo: str, env: str = "local", out: str | None = None, service: str | None = None
) -> dict[str, Any]:
    """Load the dataset into the Feast repo: sources, apply, materialize; record the contract.

    The repo's sources are replaced whole; the online store then holds every user's history,
    which is what serving reads. `out` gets the contract the training step checks against.
    """
    from augrec.data.loaders import load_dataset
    from augrec.features import contract, spec
    from augrec.features.ingest import build_sources, write_sources
    from augrec.features.store import apply, materialize, open_store

    service = service or spec.RECOMMENDER_SERVICE
    ds = load_dataset(dataset_path(dataset))
    write_sources(build_sources(ds.interactions, ds.items), spec.sources_dir(repo))
    store = open_store(repo, env)
    apply(store)
    lo, hi = materialize(store)
    doc = contract.record(store, [service], store.config.project)
    if out is not None:
        with atomic_dir(out, overwrite=True) as tmp:
            contract.write(doc, tmp / rundir.FEATURES)
    entry = next(s for s in doc["services"] if s["name"] == service)
    log.info("feature store %s (%s): %s %s", repo, env, service, entry["fingerprint"])
    return {
        "service": service,
        "fingerprint": entry["fingerprint"],
        "materialized_from": lo.isoformat(),
        "materialized_to": hi.isoformat(),
    }


# ---- augment ------------------------------------------------------------------------------


@step
def augment(
    dataset: str,
    method: str,
    out: str,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    allow_privacy_failure: bool = True,
    report_html: str | None = None,
    ray: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a synthetic set for the dataset's training split, with its report (HTML, JSON).

    `config` holds `split:` and `augment:` sections (see `AugmentConfig`); method `auto`
    generates with `AUTO_METHOD` (the selection step then decides on validation whether to
    keep it). A failed privacy gate is reported (and fails the validation gate later); with
    `allow_privacy_failure` false it fails here. `report_html` gets a copy of the report
    page (the kfp HTML artifact the Kubeflow UI shows). `ray` as for `train`: Ray Train
    workers pre-train the generator, or (`kuberay`) the whole step runs as a RayJob.
    """
    from augrec.augment.outputs import build_report, write_augmentation
    from augrec.augment.pipeline import METHODS, AugmentConfig
    from augrec.augment.pipeline import augment as generate
    from augrec.augment.report import privacy_failures
    from augrec.config import SplitConfig
    from augrec.data.loaders import load_dataset
    from augrec.data.splits import make_split
    from augrec.training.ray_train import RayConfig

    ray = dict(ray or {})
    if kuberay := ray.pop("kuberay", None):
        args = {
            **dict(dataset=dataset, method=method, out=out, config=config, seed=seed),
            **dict(allow_privacy_failure=allow_privacy_failure, ray={**ray, "ray_address": "auto"}),
        }
        info = on_kuberay("augment", args, kuberay)
        if report_html:
            shutil.copy2(_local(out, "synthetic") + "/synthetic_report.html", report_html)
        return info
    dataset = _local(dataset)
    method = AUTO_METHOD if method == "auto" else method
    if method not in METHODS:
        raise ConfigError(f"augment: unknown method {method!r}; expected one of {list(METHODS)}")
    config = _kfp_values(config or {})
    try:
        split_cfg = SplitConfig(**(config.get("split") or {}))
        aug_cfg = AugmentConfig(**{**(config.get("augment") or {}), "method": method})
        ray_cfg = RayConfig(**_kfp_values(ray))
    except ValueError as exc:
        raise ConfigError(f"augment config: {exc}") from exc
    data = dataset_path(dataset)
    split = make_split(
        load_dataset(data), split_cfg.kind, split_cfg.test_cutoff, split_cfg.valid_cutoff
    )
    on_ray = (str(data), split_cfg, ray_cfg) if ray_cfg.num_workers > 0 else None
    synth, info = generate(split, aug_cfg, seed=seed, ray=on_ray)
    synth.meta["data"] = str(data)
    report = build_report(split, synth, info, seed)
    _write_out(out, lambda path: write_augmentation(Path(path), split, synth, info, report, True))
    if report_html:
        shutil.copy2(_local(out, "synthetic") + "/synthetic_report.html", report_html)
    failures = privacy_failures(report)
    if failures and not allow_privacy_failure:
        raise AugrecError("privacy gate failed: " + "; ".join(failures))
    return {
        "synthetic_interactions": synth.n_interactions,
        "users_extended": len(synth.prefixes),
        "synthetic_share": round(synth.share(split), 6),
        "privacy_passed": not failures,
    }


# ---- train --------------------------------------------------------------------------------


@step
def train(
    dataset: str,
    out: str,
    model: str = "sasrec",
    config: dict[str, Any] | None = None,
    seed: int = 0,
    features: dict[str, str] | None = None,
    synthetic: str | None = None,
    ray: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one recommender; `out` becomes its run directory.

    With `features` (`repo`, `env`, `service` and the `fingerprint` the features step
    recorded), the training sequences are read point in time from that Feast store and must
    equal the log's, and the service must still have that fingerprint; the run records the
    contract. With `synthetic`, training uses real + synthetic sequences. `ray` holds
    `RayConfig` values (`num_workers` > 0 trains on Ray Train workers).
    """
    from augrec.config import TrainConfig
    from augrec.features.training import FeatureSource
    from augrec.training.ray_train import RayConfig
    from augrec.training.run import train_and_evaluate

    ray = dict(ray or {})
    if kuberay := ray.pop("kuberay", None):
        args = {
            **dict(dataset=dataset, out=out, model=model, config=config, seed=seed),
            **dict(features=features, synthetic=synthetic, ray={**ray, "ray_address": "auto"}),
        }
        info = on_kuberay("train", args, kuberay)
        return {**info, **_test_summary(rundir.read_metrics(_local(out, "models")))}
    dataset, synthetic = _local(dataset), _local(synthetic) if synthetic else None
    try:
        cfg = TrainConfig(**_kfp_values(config or {}))
        ray_cfg = RayConfig(**_kfp_values(ray))
    except ValueError as exc:
        raise ConfigError(f"train config: {exc}") from exc
    source = None
    if features:
        source = FeatureSource(features["repo"], features.get("env", "local"), features["service"])
    result = train_and_evaluate(
        dataset_path(dataset),
        model,
        cfg,
        seed=seed,
        ray_cfg=ray_cfg,
        augment=synthetic,
        features=source,
    )
    expected = (features or {}).get("fingerprint")
    if expected and result.feature_contract is not None:
        got = {e["name"]: e["fingerprint"] for e in result.feature_contract["services"]}
        if got.get(source.service) != expected:
            raise ConfigError(
                f"feature service {source.service!r} changed during the run "
                f"({got.get(source.service)} != {expected}); run the pipeline again"
            )

    def write(path: str) -> None:
        rundir.write_run(result, path, cfg, overwrite=True)
        _search_index(path, dataset, result.split.item_ids)

    _write_out(out, write)
    return _test_summary(result.metrics())


def _search_index(run: str, dataset: str, item_ids) -> None:
    """The run's product-search index, built from the catalog it trained on.

    Part of training, not a step of its own: the index must describe the model's catalog,
    and a model retrained on a changed catalog gets a new one with it (kfp reruns training
    when the ingested files change, titles included).
    """
    from augrec.data.loaders import load_dataset
    from augrec.search.build import build_run_index

    build_run_index(run, load_dataset(dataset_path(dataset)), item_ids)


def _kfp_values(obj: Any) -> Any:
    """Undo what a kfp dict parameter does to numbers: a protobuf Struct holds only floats.

    `hidden: 128` arrives as 128.0; integral floats become ints again so configs, metrics
    and manifests say what the user wrote (every float field accepts an int).
    """
    if isinstance(obj, dict):
        return {k: _kfp_values(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_kfp_values(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    return obj


def _test_summary(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "valid_ndcg@10": m["valid"]["ndcg@10"],
        "test_ndcg@10": m["test"]["ndcg@10"],
        "test_hr@10": m["test"]["hr@10"],
        "train_seconds": m["seconds"]["train"],
    }


def _local(path: str, kind: str = "data") -> str:
    """A local path for `path`: itself, or a cached copy of an object-storage URI."""
    from augrec import storage

    return str(storage.local_copy(path, kind)) if storage.is_remote(path) else path


def _write_out(out: str, write: Callable[[str], Any]) -> None:
    """`write(path)` to `out`, or to a temporary folder uploaded to `out` when it is a URI."""
    import tempfile

    from augrec import storage

    if not storage.is_remote(out):
        write(out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = str(Path(tmp) / "out")
        write(local)
        storage.upload(local, out)


# ---- select -------------------------------------------------------------------------------


@step
def select(baseline: str, method: str, out: str, candidate: str | None = None) -> dict[str, Any]:
    """Choose the run the gate judges: the baseline, or the augmented candidate.

    `none` keeps the baseline; an explicit method keeps the candidate (the user asked for it;
    both scores are still recorded); `auto` keeps the candidate only when its *validation*
    NDCG@10 beats the baseline's, trained with the same seed. Test scores are never looked
    at. `out` becomes a copy of the chosen run directory; the returned record (both
    validation scores and the choice) goes into the report.
    """
    if method not in AUGMENT_METHODS:
        raise ConfigError(f"augment: unknown method {method!r}; expected one of {AUGMENT_METHODS}")
    key = rundir.SELECT_METRIC
    base_valid = rundir.read_metrics(baseline)["valid"][key]
    doc: dict[str, Any] = {"method": method, "metric": f"valid {key}", "baseline": base_valid}
    if method == "none" or candidate is None:
        chosen = "baseline"
    else:
        cand_valid = rundir.read_metrics(candidate)["valid"][key]
        doc["augmented"] = cand_valid
        if method == "auto":
            chosen = "augmented" if cand_valid > base_valid else "baseline"
        else:
            chosen = "augmented"
    doc["chosen"] = chosen
    src = Path(candidate if chosen == "augmented" else baseline)
    with atomic_dir(out, overwrite=True) as tmp:
        for name in rundir.present_files(src):
            shutil.copy2(src / name, tmp / name)
    log.info("selection (%s): %s", method, doc)
    return doc


# ---- gate, register, deploy ---------------------------------------------------------------


@step
def gate(
    candidate: str,
    dataset: str,
    out: str,
    home: str | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the validation gate on the candidate against the production version in `home`.

    `out` becomes the candidate's run directory with `gate.json` (what `register` needs).
    Returns the verdict; it does not raise on a failed verdict (the pipeline branches on it).
    """
    from augrec.registry.gate import GateConfig, run_gate, write_gate
    from augrec.registry.store import open_registry

    try:
        cfg = GateConfig(**_kfp_values(config or {}))
    except ValueError as exc:
        raise ConfigError(f"gate config: {exc}") from exc
    champion = open_registry(home or None).champion(cfg.regression.against)
    verdict = run_gate(candidate, cfg, champion=champion, data=dataset_path(dataset))
    with atomic_dir(out, overwrite=True) as tmp:
        for name in rundir.present_files(candidate):
            shutil.copy2(Path(candidate) / name, tmp / name)
        write_gate(verdict, tmp)
    return verdict


def failed_checks(verdict: dict[str, Any]) -> list[str]:
    """One line per failed check: its name and what it found."""
    return [f"{c['name']}: {c['summary']}" for c in verdict["checks"] if c["status"] == "fail"]


def reject(model: str) -> None:
    """Raise `GateRejected` with every failed check of the model's `gate.json`."""
    verdict = rundir.read_json(model, rundir.GATE)
    if verdict is None:
        raise GateRejected(f"{model}: no {rundir.GATE}; the gate did not run")
    lines = failed_checks(verdict)
    raise GateRejected(
        "the validation gate rejected the candidate; nothing was registered or promoted:\n"
        + "\n".join(f"  - {line}" for line in lines)
    )


@step
def register(model: str, home: str | None = None) -> dict[str, Any]:
    """Register the gated run as a new immutable version (a passing gate is required)."""
    from augrec.registry.store import open_registry

    version, created = open_registry(home or None).register(model, require_gate=True)
    log.info("%s %s", "registered" if created else "already registered as", version.tag)
    return {"tag": version.tag, "created": created}


@step
def deploy(
    tag: str,
    home: str | None = None,
    alias: str = "production",
    deployment: str = "",
    namespace: str = "default",
) -> dict[str, Any]:
    """Point `alias` at the version: what `augrec serve` (or a serving pod) answers with.

    With `deployment` (on a cluster), a rollout: move the alias, roll the serving
    Deployment, wait until it is available, and put the alias back if it never is
    (`augrec.k8s.rollout`).
    """
    from augrec.registry.store import open_registry

    registry = open_registry(home or None)
    if deployment:
        from augrec.k8s.rollout import rollout

        result = rollout(registry, tag, deployment, namespace, alias=alias, log=log.info)
        return {"alias": alias, "tag": tag, "rollout": str(result)}
    version, event = registry.promote(tag, alias, note="augrec pipeline")
    log.info("%s -> %s", alias, version.tag)
    return {"alias": alias, "tag": version.tag, "from": (event or {}).get("from")}


def on_kuberay(name: str, kwargs: dict[str, Any], kuberay: dict[str, Any]) -> dict[str, Any]:
    """Run step `name` as a KubeRay RayJob whose entrypoint is `augrec pipeline step`.

    `kuberay` holds `RayJobConfig` values (image, namespace, head and worker groups, GPU pool
    placement) plus an optional `timeout_s`. Paths in `kwargs` must be URIs the RayJob's
    pods can read and write (object storage): they share no disk with this pod.
    """
    from augrec.k8s import RayJobConfig, run_rayjob, unique_name

    values = {k: v for k, v in kuberay.items() if k != "timeout_s"}
    cfg = RayJobConfig(
        **{
            **values,
            "name": unique_name(values.get("name", f"augrec-{name}")),
            "entrypoint": ["augrec", "pipeline", "step", name, "--args", json.dumps(kwargs)],
        }
    )
    result = run_rayjob(cfg, timeout_s=kuberay.get("timeout_s"), log=log.info)
    return {"rayjob": result.name, "seconds": result.elapsed_s}


@step
def report(
    out: str,
    baseline: str,
    gated: str,
    selection: dict[str, Any],
    dataset: str | None = None,
    candidate: str | None = None,
    synthetic: str | None = None,
) -> dict[str, Any]:
    """Write the run's `report.html` (see `augrec.pipeline_report`)."""
    from augrec import pipeline_report
    from augrec.io import atomic_write_text

    page = pipeline_report.build(baseline, gated, selection, candidate, synthetic, dataset)
    atomic_write_text(out, page)
    return {"bytes": len(page)}


def source_fingerprint(data: str | Path) -> str:
    """A content hash of the files at `data`, read as bytes (no parsing).

    For a file: it and its companions (files beside it whose names start with its stem,
    e.g. Beauty_time_org_rank.txt); for a directory: its files. Cheap enough to compute
    before a run is submitted, and the cache key of the ingest step.
    """
    import hashlib

    from augrec.registry.manifest import file_sha256

    path = Path(data)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
    elif path.is_file():
        files = sorted(
            p for p in path.parent.iterdir() if p.is_file() and p.name.startswith(path.stem)
        )
    else:
        raise ConfigError(f"--data: no such file or directory: {path}")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}\t{file_sha256(f)}\n".encode())
    return "sha256:" + digest.hexdigest()
