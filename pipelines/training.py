"""The augrec pipeline: ingest → features → train (± augmentation) → select → gate → ship.

```
ingest ─► features ─► train (real only) ──────────────────► select ─► gate ─► report
   │                         augment ≠ none:                 ▲          │
   └─► augment ─► train (real + synthetic) ──────────────────┘          ├ passed: register ─► deploy
                                                                        └ failed: reject (run fails)
```

`augment=none` trains once; any method trains the baseline and the augmented model with the
same seed, and `select` keeps the augmented one when asked for explicitly, or under `auto`
only when its validation NDCG@10 is higher. The gate's verdict decides (`dsl.If`) whether
the model is registered and promoted; a rejection fails the run after the report is written.

The two branches repeat the tail (select → gate → report → ship) rather than join: kfp.local
cannot pass an artifact out of `dsl.OneOf` (parameters only, kfp 2.17), and the same
pipeline must run there and on a cluster.
"""

# No `from __future__ import annotations`: kfp reads the pipeline's parameter types at
# definition time and cannot resolve them from strings.
from augrec.components import augment as augment_c
from augrec.components import data as data_c
from augrec.components import release, report, training
from kfp import dsl
from pydantic import BaseModel, ConfigDict, Field

PIPELINE_NAME = "augrec-train"


class StepResources(BaseModel):
    """CPU and memory of one kind of step (Kubernetes quantities)."""

    model_config = ConfigDict(extra="forbid")

    cpu: str = Field("1", description="CPU limit, e.g. 500m or 2")
    memory: str = Field("4Gi", description="memory limit, e.g. 4Gi")


class PipelineScale(BaseModel):
    """Compile-time resources: what each step's pod asks the cluster for.

    Ignored by kfp.local (one machine). `gpus` > 0 requests that many GPUs of
    `accelerator` for the training and augmentation steps (training in the step's own pod);
    with KubeRay, the RayJob's worker group asks for GPUs instead (`RayJobConfig`).
    """

    model_config = ConfigDict(extra="forbid")

    light: StepResources = StepResources(cpu="1", memory="2Gi")
    train: StepResources = StepResources(cpu="4", memory="16Gi")
    gpus: int = Field(0, ge=0)
    accelerator: str = "nvidia.com/gpu"
    retries: int = Field(2, ge=0, description="retries of the training and augmentation steps")


def _size(task: dsl.PipelineTask, res: StepResources) -> dsl.PipelineTask:
    return task.set_cpu_limit(res.cpu).set_memory_limit(res.memory)


def _heavy(task: dsl.PipelineTask, scale: PipelineScale) -> dsl.PipelineTask:
    """Training-sized resources, GPUs when asked, and retries (a preempted node, an OOM)."""
    _size(task, scale.train).set_retry(num_retries=scale.retries, backoff_duration="30s")
    if scale.gpus:
        task.set_accelerator_type(scale.accelerator).set_accelerator_limit(scale.gpus)
    return task


def _uncached(task: dsl.PipelineTask, scale: PipelineScale) -> dsl.PipelineTask:
    """Steps whose result depends on state outside their inputs (store, registry)."""
    return _size(task, scale.light).set_caching_options(False)


def build(scale: PipelineScale | None = None):  # noqa: ANN201 (a kfp GraphComponent)
    """The pipeline function, sized by `scale`."""
    scale = scale or PipelineScale()

    def ship(baseline, chosen, selection, dataset, params, candidate=None, synthetic=None):
        gate = _uncached(
            release.gate(
                candidate=chosen,
                dataset=dataset,
                home=params["registry_home"],
                config=params["gate_config"],
            ),
            scale,
        )
        extra = {"candidate": candidate, "synthetic": synthetic} if candidate is not None else {}
        page = _uncached(
            report.report(
                baseline=baseline,
                gated=gate.outputs["gated"],
                selection=selection,
                dataset=dataset,
                **extra,
            ),
            scale,
        )
        with dsl.If(gate.outputs["Output"] == True, name="gate-passed"):  # noqa: E712
            reg = _uncached(
                release.register(gated=gate.outputs["gated"], home=params["registry_home"]),
                scale,
            )
            _uncached(
                release.deploy(
                    tag=reg.output,
                    home=params["registry_home"],
                    alias=params["alias"],
                    deployment=params["deployment"],
                    namespace=params["namespace"],
                ),
                scale,
            ).after(page)
        with dsl.Else(name="gate-failed"):
            _uncached(release.reject(gated=gate.outputs["gated"]), scale).after(page)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Train a recommender on features from Feast, with synthetic-data "
        "augmentation kept only where it helps, gate it, register and deploy it.",
    )
    def augrec_train(
        data: str,
        data_fingerprint: str = "",
        augment: str = "none",
        model: str = "sasrec",
        train_config: dict = {},  # noqa: B006 (kfp reads defaults from the signature)
        augment_config: dict = {},  # noqa: B006
        gate_config: dict = {},  # noqa: B006
        seed: int = 0,
        feature_repo: str = "feature_repo",
        feature_env: str = "local",
        feature_service: str = "recommender_v1",
        registry_home: str = "",
        alias: str = "production",
        ray: dict = {},  # noqa: B006 (RayConfig values; "kuberay": RayJobConfig values)
        serving_deployment: str = "",
        namespace: str = "default",
    ):
        params = {
            "registry_home": registry_home,
            "gate_config": gate_config,
            "alias": alias,
            "deployment": serving_deployment,
            "namespace": namespace,
        }
        ingest = _size(data_c.ingest(data=data, data_fingerprint=data_fingerprint), scale.light)
        dataset = ingest.outputs["dataset"]
        feats = _uncached(
            data_c.features(
                dataset=dataset, repo=feature_repo, env=feature_env, service=feature_service
            ),
            scale,
        )
        feature_source = {
            "repo": feature_repo,
            "env": feature_env,
            "service": feature_service,
            "fingerprint": feats.outputs["Output"],
        }
        train_args = dict(
            dataset=dataset,
            model_name=model,
            config=train_config,
            seed=seed,
            features=feature_source,
            ray=ray,
        )
        base = _heavy(training.train(**train_args), scale).set_display_name("train (real only)")
        with dsl.If(augment == "none", name="no-augmentation"):
            # Not cached (a copy, seconds): `augrec run` reads the choice from this run's folder.
            sel = _uncached(training.select(baseline=base.outputs["model"], method=augment), scale)
            ship(
                base.outputs["model"], sel.outputs["model"], sel.outputs["Output"], dataset, params
            )
        with dsl.Else(name="augmentation"):
            aug = _heavy(
                augment_c.augment(
                    dataset=dataset, method=augment, config=augment_config, seed=seed, ray=ray
                ),
                scale,
            )
            cand = _heavy(
                training.train(**train_args, synthetic=aug.outputs["synthetic"]), scale
            ).set_display_name("train (real + synthetic)")
            sel = _uncached(
                training.select(
                    baseline=base.outputs["model"],
                    method=augment,
                    candidate=cand.outputs["model"],
                ),
                scale,
            )
            ship(
                base.outputs["model"],
                sel.outputs["model"],
                sel.outputs["Output"],
                dataset,
                params,
                candidate=cand.outputs["model"],
                synthetic=aug.outputs["synthetic"],
            )

    return augrec_train
