"""Synthetic behaviour for the training split, with its report."""

from augrec.components.image import IMAGE
from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Output


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def augment(
    dataset: Input[Dataset],
    method: str,
    config: dict,
    seed: int,
    ray: dict,
    synthetic: Output[Dataset],
    report: Output[HTML],
):
    """Write a synthetic set (none | heuristic | mle | gan; auto generates with mle).

    With `ray["kuberay"]` the work runs as a RayJob reading and writing by URI.
    """
    from augrec.steps import augment as run

    where = "uri" if ray.get("kuberay") else "path"
    info = run(
        getattr(dataset, where),
        method,
        getattr(synthetic, where),
        config,
        seed,
        report_html=report.path,
        ray=ray,
    )
    synthetic.metadata.update(info)
