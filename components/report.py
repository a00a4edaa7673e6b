"""The run's report page."""

from augrec.components.image import IMAGE
from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Model, Output


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def report(
    baseline: Input[Model],
    gated: Input[Model],
    selection: dict,
    dataset: Input[Dataset],
    page: Output[HTML],
    candidate: Input[Model] = None,
    synthetic: Input[Dataset] = None,
):
    """Gate checks, the augmentation choice, metrics, curves, buckets and popularity."""
    from augrec.steps import report as run

    run(
        page.path,
        baseline.path,
        gated.path,
        selection,
        dataset.path,
        candidate.path if candidate else None,
        synthetic.path if synthetic else None,
    )
