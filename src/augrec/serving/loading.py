"""Find the model a server answers with: a registered version or a run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augrec import rundir
from augrec.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from augrec.models.base import Recommender as Model
    from augrec.registry.objstore import ObjectRegistry
    from augrec.registry.store import ModelVersion, Registry

DEFAULT_ALIAS = "production"


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score, with what serving needs to know about it."""

    model: Model
    item_ids: np.ndarray  # [n_items + 1] original item id of each encoded id (0: padding)
    version: str  # the registry tag, or `run:<directory name>` for an unregistered run
    path: Path
    contract: dict[str, Any] | None  # features.json: the Feast services it was trained on


def default_version(registry: Registry | ObjectRegistry) -> ModelVersion:
    """The `production` alias, else the newest registered version."""
    from augrec.errors import RegistryError

    tag = registry.aliases.get(DEFAULT_ALIAS)
    if tag is not None:
        return registry.get(tag)
    versions = registry.versions()
    if not versions:
        raise RegistryError(
            f"--model: no model is registered in {registry.home} and none was given; "
            "register one with `augrec models register RUN_DIR`, or pass a run directory"
        )
    return versions[-1]


def describe(ref: str | None, home: str | Path | None = None) -> tuple[str, Path]:
    """Resolve `ref` to (version, path) without loading the model (a fast check for the CLI).

    `home` is a BentoML home or an object-storage URI; for a version on object storage the
    path is its local cache directory, filled when the model is loaded.
    """
    if ref and Path(ref).is_dir():
        path = Path(ref).resolve()
        if not rundir.is_run(path):
            raise ConfigError(f"--model: {ref} is a directory without model.pt (not a run?)")
        return f"run:{path.name}", path
    from augrec.registry.store import open_registry

    registry = open_registry(home)
    version = registry.get(ref) if ref else default_version(registry)
    return version.tag, version.path


def verify(version: str, home: str | Path | None = None) -> None:
    """Refuse a registered version whose files no longer match their recorded sha256.

    `augrec serve` calls this before starting BentoML, so a corrupted version stops the
    process at once with the reason, instead of a worker failing (and being restarted) inside.

    Raises:
        RegistryError: a file is missing or changed since registration.
    """
    from augrec.errors import RegistryError
    from augrec.registry.store import open_registry

    if problems := open_registry(home).get(version).verify():
        raise RegistryError(
            f"{version} failed its integrity check: {'; '.join(problems)}; not serving it "
            "(promote or roll back to an intact version: `augrec models rollback`)"
        )


def load(ref: str | None, home: str | Path | None = None) -> LoadedModel:
    """Load a model: `ref` is a run directory or anything `Registry.get` accepts.

    A registered version is integrity-checked before it is loaded (see `ModelVersion.load`);
    one on object storage is first downloaded into the local cache.
    """
    version, path = describe(ref, home)
    if version.startswith("run:"):
        model, item_ids = rundir.load_model(path, device="cpu")
    else:
        from augrec.registry.store import open_registry

        registered = open_registry(home).get(version)
        model, item_ids = registered.load(device="cpu")  # fetched and checked on the way
        path = registered.fetch()
    contract = rundir.read_json(path, rundir.FEATURES)
    return LoadedModel(model, item_ids, version, path, contract)
