"""Train a recommender (features from Feast), and choose between baseline and augmented."""

from augrec.components.image import IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    dataset: Input[Dataset],
    model_name: str,
    config: dict,
    seed: int,
    features: dict,
    ray: dict,
    model: Output[Model],
    metrics: Output[Metrics],
    synthetic: Input[Dataset] = None,
):
    """Train, select on validation, test once; the model artifact is a run directory.

    With `ray["kuberay"]` the work runs as a RayJob, which reads and writes the artifacts by
    URI (object storage); otherwise in this pod or process, by local path.
    """
    from augrec.steps import train as run

    where = "uri" if ray.get("kuberay") else "path"
    info = run(
        getattr(dataset, where),
        getattr(model, where),
        model_name,
        config,
        seed,
        features,
        getattr(synthetic, where) if synthetic is not None else None,
        ray,
    )
    for key, value in info.items():
        metrics.log_metric(key, value)
    model.metadata.update(info)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def select(
    baseline: Input[Model], method: str, model: Output[Model], candidate: Input[Model] = None
) -> dict:
    """Keep the baseline or the augmented model (auto: whichever validates better)."""
    from augrec.steps import select as run

    doc = run(baseline.path, method, model.path, candidate.path if candidate else None)
    model.metadata.update(doc)
    return doc
