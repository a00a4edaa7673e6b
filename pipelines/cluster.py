"""Compile the pipeline to YAML for Kubeflow Pipelines, and submit it with `kfp.Client`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from augrec.errors import ConfigError


def compile_pipeline(out: str | Path, image: str | None = None, scale: Any = None) -> Path:
    """Write the pipeline's IR YAML to `out` (atomically); `image` replaces every step's image.

    The image is set on the compiled spec rather than through the environment at import, so
    one process can compile for several images.
    """
    from augrec.pipelines.training import build
    from kfp import compiler

    from augrec.io import atomic_write_text

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(build(scale), str(raw))
        docs = list(yaml.safe_load_all(raw.read_text()))
    if image:
        for executor in docs[0]["deploymentSpec"]["executors"].values():
            if "container" in executor:
                executor["container"]["image"] = image
    atomic_write_text(out, yaml.safe_dump_all(docs, sort_keys=False))
    return out


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` strings into pipeline arguments; values are read as JSON when they parse.

    `seed=3` is an int, `ray={"num_workers": 2}` a dict, `data=s3://b/x` a string.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param: expected KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def submit(
    package: str | Path,
    host: str,
    arguments: dict[str, Any],
    experiment: str = "augrec",
    run_name: str | None = None,
    namespace: str | None = None,
) -> dict[str, str]:
    """Submit a compiled pipeline to Kubeflow Pipelines; returns the run's id and URL.

    Authentication is kfp.Client's: `KF_PIPELINES_SA_TOKEN_PATH` or a token in the
    environment (`KFP_TOKEN`), else none (an in-cluster or port-forwarded endpoint).
    """
    import kfp

    client = kfp.Client(host=host, namespace=namespace, existing_token=os.environ.get("KFP_TOKEN"))
    result = client.create_run_from_pipeline_package(
        str(package),
        arguments=arguments,
        experiment_name=experiment,
        run_name=run_name,
        namespace=namespace,
    )
    return {"run_id": result.run_id, "url": f"{host.rstrip('/')}/#/runs/details/{result.run_id}"}
