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
    synthetic: Output[Dataset],
    report: Output[HTML],
):
    """Write a synthetic set (none | heuristic | mle | gan; auto generates with mle)."""
    from augrec.steps import augment as run

    synthetic.metadata.update(
        run(dataset.path, method, synthetic.path, config, seed, report_html=report.path)
    )
