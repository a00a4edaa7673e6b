"""Run the pipeline on this machine through `kfp.local` (each step a subprocess).

`run_local` executes the same pipeline a Kubeflow cluster runs, with the steps' outputs under
`<out>/steps/` (kfp.local's layout: `<pipeline>-<time>/<task>/<output>`), then lays out
the run folder for people: `report.html`, `run.json` (parameters, outcome, where every step's
output is) and `model/` (the gated run directory).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augrec.io import write_json

log = logging.getLogger("augrec.pipeline")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FAILED_TASK = re.compile(r"Inner task failed: '([^']+)'")


@dataclass
class LocalRun:
    """Where a local run left its outputs, and how it ended."""

    out: Path
    succeeded: bool
    failed_task: str | None = None
    error: str | None = None
    outputs: dict[str, list[str]] = field(default_factory=dict)  # task -> output paths
    seconds: float = 0.0

    def output(self, task: str, name: str) -> Path | None:
        """The path of one task's output (branches name tasks `gate`, `gate-2`...)."""
        for t, paths in self.outputs.items():
            if re.fullmatch(rf"{re.escape(task)}(-\d+)?", t):
                for p in paths:
                    if Path(p).name == name:
                        return Path(p)
        return None


def _task_outputs(root: Path) -> dict[str, list[str]]:
    """Every output kfp.local wrote under the newest run folder of `root`, per task."""
    runs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    if not runs:
        return {}
    return {
        task.name: sorted(str(o) for o in task.iterdir())
        for task in sorted(runs[-1].iterdir())
        if task.is_dir()
    }


def run_local(
    arguments: dict[str, Any],
    out: str | Path,
    cache_root: str | Path | None = None,
    scale: Any = None,
) -> LocalRun:
    """Run the pipeline with `arguments` (its parameters); never raises for a failed step.

    Args:
        arguments: Pipeline parameters (see `augrec.pipelines.training.build`).
        out: The run folder (created); steps write under `out/steps`.
        cache_root: kfp.local's step cache (shared across runs); None turns caching off.
        scale: A `PipelineScale` (resources are ignored locally; kept for one code path).
    """
    from augrec.pipelines.training import build
    from kfp import local

    out = Path(out)
    steps = out / "steps"
    steps.mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(steps),
        enable_caching=cache_root is not None,
        cache_root=str(cache_root) if cache_root is not None else None,
    )
    pipeline = build(scale)
    t0 = time.perf_counter()
    run = LocalRun(out=out, succeeded=True)
    try:
        with warnings.catch_warnings():
            # kfp.local's notes that resource limits and the project image do not apply
            # here: true of every local run, and repeated for every step.
            warnings.filterwarnings("ignore", message=".*have no effect in the current local")
            warnings.filterwarnings("ignore", message=".*non-Python base image")
            pipeline(**arguments)
    except RuntimeError as exc:  # kfp.local: a task failed (its log was streamed above)
        msg = _ANSI.sub("", str(exc))
        found = _FAILED_TASK.search(msg)
        run.succeeded = False
        run.failed_task = found.group(1) if found else None
        run.error = msg
    run.seconds = time.perf_counter() - t0
    run.outputs = _task_outputs(steps)
    _lay_out(run, arguments)
    return run


def _lay_out(run: LocalRun, arguments: dict[str, Any]) -> None:
    """report.html and model/ at the top of the run folder; run.json describes the rest."""
    page = run.output("report", "page")
    if page is not None and page.exists():
        shutil.copy2(page, run.out / "report.html")
    gated = run.output("gate", "gated")
    if gated is not None and gated.is_dir():
        shutil.copytree(gated, run.out / "model", dirs_exist_ok=True)
    write_json(
        run.out / "run.json",
        {
            "succeeded": run.succeeded,
            "failed_task": run.failed_task,
            "seconds": round(run.seconds, 1),
            "arguments": arguments,
            "outputs": run.outputs,
            "report": str(run.out / "report.html") if page is not None else None,
        },
    )


def read_outputs(run: LocalRun, task: str) -> Any:
    """A task's returned value (kfp.local keeps it in the task's executor output)."""
    for t, paths in run.outputs.items():
        if re.fullmatch(rf"{re.escape(task)}(-\d+)?", t):
            for p in paths:
                if Path(p).name == "executor_output.json":
                    doc = json.loads(Path(p).read_text())
                    return doc.get("parameterValues", {}).get("Output")
    return None
