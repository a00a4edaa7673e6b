"""Feast's file registry, replaced whole on every write instead of rewritten in place.

Feast's `FileRegistryStore` opens `registry.db` with mode "wb" and writes the new document
into it: a process killed between the truncate and the write (`augrec features apply`, or the
end of every `materialize`, which records the materialized interval) leaves an empty or
partial registry, and every reader then finds no feature views. This store writes a temporary
file beside it, fsyncs it and renames it over the old one, so readers see the old registry or
the new one. Selected in `feature_store*.yaml`:

    registry:
      path: data/registry.db
      registry_store_type: augrec.features.registry_store.AtomicFileRegistryStore
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feast.infra.registry.file import FileRegistryStore


class AtomicFileRegistryStore(FileRegistryStore):
    """A local file registry whose updates are atomic (temporary file, fsync, rename)."""

    def __init__(self, registry_config: Any, repo_path: Path):
        super().__init__(registry_config, repo_path)
        path = Path(registry_config.path)
        self.path = path if path.is_absolute() else Path(repo_path) / path

    def update_registry_proto(self, registry_proto: Any) -> None:
        """Write the registry document through a temporary file and a rename."""
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(datetime.now(UTC))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(registry_proto.SerializeToString())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
