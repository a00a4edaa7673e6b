"""Gate, then register and deploy the model that passed it, or stop the run if it failed."""

from augrec.components.image import IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gate(
    candidate: Input[Model],
    dataset: Input[Dataset],
    home: str,
    config: dict,
    gated: Output[Model],
    checks: Output[Metrics],
) -> bool:
    """Run the validation gate; `gated` is the run with its gate.json."""
    from augrec.steps import gate as run

    verdict = run(candidate.path, dataset.path, gated.path, home, config)
    for c in verdict["checks"]:
        checks.log_metric(c["name"], {"pass": 1.0, "skip": 0.5, "fail": 0.0}[c["status"]])
    gated.metadata.update({"passed": verdict["passed"], "failed": verdict["failed"]})
    return verdict["passed"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def reject(gated: Input[Model]):
    """Fail the run, printing every failed check."""
    from augrec.steps import reject as run

    run(gated.path)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register(gated: Input[Model], home: str) -> str:
    """Register the gated run as a new immutable version; returns its tag."""
    from augrec.steps import register as run

    return run(gated.path, home)["tag"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy(tag: str, home: str, alias: str, deployment: str, namespace: str) -> dict:
    """Point the alias at the version; with a Deployment name, roll it out (or roll back)."""
    from augrec.steps import deploy as run

    return run(tag, home, alias, deployment, namespace)
