"""The thin edge to Feast: open our repo in an environment, plan, apply, materialize.

Every function here imports Feast (~6 s) inside its body; the rest of `augrec` never pays it.
The repo's Python definitions are imported in isolation, so two copies of the repo (a test's
temporary one, a modified one) can be applied in one process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augrec.errors import ConfigError

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.repo_contents import RepoContents

DEFAULT_ENV = "local"
# Values `${VAR}` takes in a feature_store yaml when VAR is unset (the plain `feast` CLI has no
# defaults: it leaves `${VAR}` as is).
ENV_DEFAULTS = {"AUGREC_REDIS_PASSWORD": "", "AUGREC_REDIS_SSL": "false"}
_VAR = re.compile(r"\$\{(\w+)\}")


def config_file(repo: str | Path, env: str = DEFAULT_ENV) -> Path:
    """feature_store.yaml for `local`, feature_store.<env>.yaml for any other environment."""
    repo = Path(repo)
    path = repo / ("feature_store.yaml" if env == DEFAULT_ENV else f"feature_store.{env}.yaml")
    if not path.exists():
        known = sorted(
            DEFAULT_ENV if p.name == "feature_store.yaml" else p.name.split(".")[1]
            for p in repo.glob("feature_store*.yaml")
        )
        raise ConfigError(f"--env: no {path.name} in {repo} (environments there: {known})")
    return path


def expand_env(text: str, source: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace `${VAR}` from the environment (with ENV_DEFAULTS); name every missing one."""
    import os

    env = {**ENV_DEFAULTS, **(os.environ if environ is None else environ)}
    missing = sorted({m for m in _VAR.findall(text) if m not in env})
    if missing:
        raise ConfigError(f"{source}: set the environment variable(s) {', '.join(missing)}")
    return _VAR.sub(lambda m: env[m.group(1)], text)


def load_config(
    repo: str | Path, env: str = DEFAULT_ENV, environ: Mapping[str, str] | None = None
) -> Any:
    """The repo's Feast `RepoConfig` for an environment, `${VAR}`s expanded from `environ`.

    `environ` defaults to the process environment.
    """
    import yaml
    from feast.repo_config import RepoConfig

    repo = Path(repo).resolve()
    path = config_file(repo, env)
    raw = yaml.safe_load(expand_env(path.read_text(), str(path), environ))
    # Feast re-validates the registry section on every access of `config.registry`, so the
    # filter stays for the process (it drops one message only).
    feast_config_log = logging.getLogger("feast.repo_config")
    if _no_materializing_advice not in feast_config_log.filters:
        feast_config_log.addFilter(_no_materializing_advice)
    config = RepoConfig(**raw)
    config.repo_path = repo
    return config


def _no_materializing_advice(record: logging.LogRecord) -> bool:
    """Drop Feast's advice about `serve_features_while_materializing` on a file registry.

    Feast says the flag typically does nothing there; it does: readers check it on every
    read (tests/features/test_feature_crash.py fails without it).
    """
    return "serve_features_while_materializing" not in record.getMessage()


# What fills a store: the pipeline does it as a step; the features commands one by one.
FILL_COMMANDS = (
    "`augrec run --data DATA` (the whole pipeline), or `augrec features ingest --data DATA`, "
    "`augrec features apply` and `augrec features materialize`"
)


def local_registry(config: Any, repo: Path) -> Path | None:
    """The registry file of a file registry on this machine (None: remote or SQL registry)."""
    reg = config.registry
    path = reg if isinstance(reg, str) else getattr(reg, "path", None)
    kind = getattr(reg, "registry_type", "file")
    if kind != "file" or not path or "://" in str(path):
        return None
    path = Path(path)
    return path if path.is_absolute() else repo / path


def open_store(
    repo: str | Path,
    env: str = DEFAULT_ENV,
    environ: Mapping[str, str] | None = None,
    require_registry: bool = False,
) -> FeatureStore:
    """A `FeatureStore` over `repo` configured for `env` (local: SQLite; redis: Redis).

    With `require_registry`, a local file registry that does not exist yet is an error naming
    the commands that fill it, instead of Feast creating an empty one (readers do this: an
    empty registry has nothing to read, and creating it writes into the repo).
    """
    from feast import FeatureStore

    repo = Path(repo).resolve()
    if not repo.is_dir():
        raise ConfigError(f"--repo: no such feature repo directory: {repo}")
    config = load_config(repo, env, environ)
    registry = local_registry(config, repo)
    if require_registry and registry is not None and not registry.exists():
        raise ConfigError(
            f"feature repo {repo} is not set up (no registry at {registry}); "
            f"fill it with {FILL_COMMANDS}"
        )
    return FeatureStore(repo_path=str(repo), config=config)


@contextlib.contextmanager
def _repo_on_path(repo: Path) -> Iterator[None]:
    """Import the repo's modules fresh, as `feast apply` does, and forget them afterwards.

    The definition files import each other by bare name (`from entities import user`), so
    another copy's `entities` left in `sys.modules` would silently be reused.
    """

    def ours() -> list[str]:
        return [
            name
            for name, mod in list(sys.modules.items())
            if getattr(mod, "__file__", None) and Path(mod.__file__).resolve().is_relative_to(repo)
        ]

    names = {p.stem for p in repo.glob("*.py")}
    for name in names:
        sys.modules.pop(name, None)
    saved_path, saved_bytecode = list(sys.path), sys.dont_write_bytecode
    sys.path.insert(0, str(repo))
    sys.dont_write_bytecode = True
    try:
        with contextlib.chdir(repo):  # Feast names modules by their path from the cwd
            yield
    finally:
        for name in [*ours(), *names]:
            sys.modules.pop(name, None)
        sys.path[:] = saved_path
        sys.dont_write_bytecode = saved_bytecode


def load_definitions(store: FeatureStore) -> RepoContents:
    """Parse the Feast objects defined in the store's repo (honouring `.feastignore`)."""
    from feast.project import Project
    from feast.repo_operations import parse_repo

    repo = Path(store.repo_path).resolve()
    with _repo_on_path(repo):
        contents = parse_repo(repo)
    if not contents.projects:
        contents.projects.append(Project(name=store.config.project))
    return contents


def plan(store: FeatureStore) -> str:
    """What `apply` would change in the registry and the online store, as Feast prints it."""
    contents = load_definitions(store)
    registry_diff, infra_diff, _ = store.plan(contents)
    return f"{registry_diff.to_string()}\n{infra_diff.to_string()}".strip()


def apply(store: FeatureStore) -> str:
    """Register the repo's definitions and create the online tables; returns the diff."""
    from feast.repo_operations import apply_total_with_repo_instance

    contents = load_definitions(store)
    registry_diff, infra_diff, _ = store.plan(contents)
    summary = f"{registry_diff.to_string()}\n{infra_diff.to_string()}".strip()
    # Feast's own apply path (it also deletes objects removed from the repo); it prints the
    # same diff we return.
    with contextlib.redirect_stdout(io.StringIO()):
        apply_total_with_repo_instance(
            store,
            store.config.project,
            store.registry,
            contents,
            skip_source_validation=False,
        )
    store.refresh_registry()
    return summary


def source_time_range(store: FeatureStore) -> tuple[datetime, datetime] | None:
    """Earliest and latest row time over the repo's file sources (None when there is no data)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from feast.infra.offline_stores.file_source import FileSource

    lo: datetime | None = None
    hi: datetime | None = None
    for view in store.list_feature_views():
        source = view.batch_source
        if not isinstance(source, FileSource):
            continue
        path = Path(FileSource.get_uri_for_file_path(store.repo_path, source.path))
        if not path.exists():
            continue
        col = pq.read_table(path, columns=[source.timestamp_field]).column(0)
        if len(col) == 0:
            continue
        a, b = pc.min(col).as_py(), pc.max(col).as_py()
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return None if lo is None or hi is None else (lo, hi)


def materialize(
    store: FeatureStore,
    start: datetime | None = None,
    end: datetime | None = None,
    views: list[str] | None = None,
) -> tuple[datetime, datetime]:
    """Load the latest row per entity with a time in [start, end] into the online store.

    Defaults cover all the data in the sources. Returns the range used.
    """
    if start is None or end is None:
        span = source_time_range(store)
        if span is None:
            raise ConfigError(
                f"{store.repo_path}: the feature sources are empty or missing; "
                "run `augrec features ingest` first"
            )
        start = start or span[0]
        end = end or span[1] + timedelta(seconds=1)
    start, end = _utc(start), _utc(end)
    if start >= end:
        raise ConfigError(f"--start {start.isoformat()} must be before --end {end.isoformat()}")
    # Feast prints colorama codes whatever the stream; a pipe or log file gets them stripped.
    out = sys.stderr if sys.stderr.isatty() else _PlainText(sys.stderr)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), in_repo(store):
        store.materialize(start_date=start, end_date=end, feature_views=views)
    return start, end


@contextlib.contextmanager
def in_repo(store: FeatureStore) -> Iterator[None]:
    """Run offline-store reads from inside the repo.

    The repo's sources name their files relative to the repo (a copy of it reads its own
    data); Feast's DuckDB offline store resolves such paths against the working directory.
    """
    with contextlib.chdir(Path(store.repo_path).resolve()):
        yield


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _PlainText(io.TextIOBase):
    """A text stream that writes to `target` without ANSI escape sequences."""

    def __init__(self, target: Any):
        self.target = target

    def write(self, text: str) -> int:
        """Write `text` minus colour and cursor codes; returns the length given."""
        self.target.write(_ANSI.sub("", text))
        return len(text)

    def flush(self) -> None:
        """Flush the target."""
        self.target.flush()

    def isatty(self) -> bool:
        """Never a terminal: progress bars draw as plain lines."""
        return False


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
