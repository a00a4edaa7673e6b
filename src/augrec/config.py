"""Typed run configuration, loaded from YAML in one place (the CLI) and passed as objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from augrec.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitConfig(_Strict):
    """How interactions become train/validation/test."""

    kind: Literal["loo", "temporal"] = "loo"
    test_cutoff: int | None = Field(None, description="temporal: Unix seconds of the test cut")
    valid_cutoff: int | None = Field(None, description="temporal: Unix seconds of the valid cut")


class EvalConfig(_Strict):
    """Evaluation settings."""

    batch_size: int = Field(512, ge=1)
    noisy_shares: list[float] = Field(
        default_factory=list,
        description="also test with this share of each test user's history replaced by random "
        "items (seeded; e.g. [0.1, 0.2]), reported as `test_noisy` beside `test`",
    )

    @field_validator("noisy_shares")
    @classmethod
    def _shares_in_range(cls, v: list[float]) -> list[float]:
        bad = [s for s in v if not 0 < s <= 1]
        if bad:
            raise ValueError(f"every share must be in (0, 1], got {bad}")
        return v


class SelectionConfig(_Strict):
    """How candidate settings are compared on validation (never on test).

    `grid` crosses each listed value with the `model:` settings (e.g. `synthetic_weight:
    [0, 0.3, 1]`, `adv_eps: [0.1, 0.5]`); every combination is trained and the best on
    validation NDCG@10 of `users` is kept.
    """

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    users: Literal["all", "short"] = Field(
        "all", description="all validation users, or those with <= short_max training items"
    )
    short_max: int = Field(5, ge=1)


class TrainConfig(_Strict):
    """Everything `augrec train` needs beyond the data path, model name and seed.

    `model` holds the model's own hyper-parameters; when empty, the model's candidate grid
    is searched and the best on validation NDCG@10 is kept.
    """

    split: SplitConfig = SplitConfig()
    eval: EvalConfig = EvalConfig()
    model: dict[str, Any] = Field(default_factory=dict)
    refit: bool = Field(
        False,
        description="epoch-trained models: after selecting the epoch count on validation, "
        "retrain from scratch for that many epochs with each user's validation item added to "
        "training, and test that model (the test item is still never seen)",
    )
    selection: SelectionConfig = SelectionConfig()
    titles: str | None = Field(
        None,
        description="item titles table (item_id, title; TSV/CSV/parquet) for `text:`; default: "
        "the items table's title column, or `<stem>_titles.tsv` beside an Amazon file",
    )
    augment: dict[str, Any] | None = Field(
        None,
        description="AugmentConfig values: generate a synthetic set in-process (the augment "
        "core), train on real + synthetic, and write the set and its report into the run "
        "directory. None: train on real data only (or on --augment's set)",
    )


def _format_validation_error(exc: ValidationError, source: str) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{source}: field '{loc}': {err['msg']} (got {err.get('input')!r})")
    return "\n".join(parts)


def load_yaml_config(path: str | Path, cls: type[M], option: str = "--config") -> M:
    """Read a YAML mapping into the pydantic model `cls`; errors name the field and value."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{option}: no such file: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{option}: {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{option}: {path} must hold a mapping, got {type(raw).__name__}")
    try:
        return cls(**raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, str(path))) from exc


def load_train_config(path: str | Path | None) -> TrainConfig:
    """Read a YAML file into a `TrainConfig`; errors name the field and the value."""
    if path is None:
        return TrainConfig()
    cfg = load_yaml_config(path, TrainConfig)
    if cfg.augment is not None:  # checked now, not after the data has loaded
        from augrec.augment.pipeline import AugmentConfig

        try:
            AugmentConfig(**cfg.augment)
        except ValidationError as exc:
            raise ConfigError(_format_validation_error(exc, f"{path} (augment:)")) from exc
    return cfg


# The best SASRec settings measured (docs/benchmarks.md, SASRec on Amazon Beauty; the same
# as benchmarks/configs/sasrec-beauty.yaml, which a test keeps equal): what `augrec run`
# trains when no --config is given.
BEST_TRAIN = {"model": {"hidden": 128, "eval_every": 1, "patience": 5}, "refit": True}


class RunConfig(TrainConfig):
    """`augrec run --config`: the training sections, plus `augment:` and `gate:`.

    `augment:` holds `AugmentConfig` values (used when --augment is not none) and `gate:`
    `GateConfig` values; both are checked before the pipeline starts.
    """

    # Here `augment:` configures the pipeline's own augmentation step, not in-process
    # generation inside the training step (which `train_section` leaves out).
    augment: dict[str, Any] = Field(default_factory=dict)  # type: ignore[assignment]
    gate: dict[str, Any] = Field(default_factory=dict)

    def train_section(self) -> dict[str, Any]:
        """What the training step takes (`TrainConfig` values)."""
        return self.model_dump(exclude={"augment", "gate"})

    def augment_section(self) -> dict[str, Any]:
        """What the augmentation step takes: the split and the `AugmentConfig` values."""
        return {"split": self.split.model_dump(), "augment": self.augment}


def load_run_config(path: str | Path | None) -> RunConfig:
    """`augrec run`'s config: the file, or the best measured training settings when None.

    A file replaces the defaults whole (no merging): what it says is what runs.
    """
    cfg = RunConfig(**BEST_TRAIN) if path is None else load_yaml_config(path, RunConfig)
    from augrec.augment.pipeline import AugmentConfig
    from augrec.registry.gate import GateConfig

    for name, cls in (("augment", AugmentConfig), ("gate", GateConfig)):
        try:
            cls(**getattr(cfg, name))
        except ValidationError as exc:
            raise ConfigError(
                _format_validation_error(exc, f"{path or 'defaults'} ({name}:)")
            ) from exc
    return cfg
