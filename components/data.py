"""Ingest (load + validate) and features (Feast apply + materialize)."""

from augrec.components.image import IMAGE
from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def ingest(data: str, data_fingerprint: str, dataset: Output[Dataset]):
    """Validate the input data and keep it as the run's dataset (fails on a bad file)."""
    from augrec.steps import ingest as run

    dataset.metadata.update(run(data, dataset.path, expect_fingerprint=data_fingerprint or None))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def features(
    dataset: Input[Dataset], repo: str, env: str, service: str, contract: Output[dsl.Artifact]
) -> str:
    """Load the dataset into the Feast store; returns the FeatureService's fingerprint."""
    from augrec.steps import features as run

    info = run(dataset.path, repo, env, contract.path, service)
    contract.metadata.update(info)
    return info["fingerprint"]
