"""Aliases (`production`, `staging`, ...) that point at registered versions, with history.

One JSON file in the registry root holds every alias:

    {"format": "augrec.aliases/1",
     "aliases": {"production": {"tag": "augrec-beauty-sasrec:abc", "updated_at": "...",
                                "previous": ["augrec-beauty-sasrec:xyz"],
                                "history": [{"at", "action", "from", "to", "user", "note"}]}}}

`previous` is the rollback stack (a promote pushes the version it replaces, a rollback pops
it); `history` is the append-only audit log. Every change is a read-modify-write under an
exclusive `flock` on a sibling lock file, and the new document replaces the old with
`os.replace`: concurrent promotes serialise, readers (who take no lock) see the old document
or the new one, and a process killed at any point leaves the previous document whole. The
kernel drops the lock when its holder dies, so a crashed promote never wedges the next one.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from augrec.errors import RegistryError
from augrec.io import file_lock, write_json
from augrec.registry.manifest import now_iso

FORMAT = "augrec.aliases/1"
ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
T = TypeVar("T")


def empty() -> dict[str, Any]:
    """The document of a registry where no alias was ever set."""
    return {"format": FORMAT, "aliases": {}}


def parse(text: str | bytes, where: Any) -> dict[str, Any]:
    """Parse and check an alias document read from `where` (named in errors)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:  # only a hand edit can do this
        raise RegistryError(f"{where} is not valid JSON: {exc}") from exc
    if doc.get("format") != FORMAT:
        raise RegistryError(f"{where} is not an alias file (format {FORMAT})")
    return doc


def check_alias(alias: str) -> str:
    """Aliases are short lowercase names: letters, digits, '-' and '_'."""
    if not ALIAS_RE.match(alias):
        raise RegistryError(
            f"--alias: {alias!r} is not a valid alias (lowercase letters, digits, '-' or '_', "
            "starting with a letter)"
        )
    return alias


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return "unknown"


class AliasBook:
    """The alias file of one registry root."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    def read(self) -> dict[str, Any]:
        """The whole document (an empty one when no alias was ever set)."""
        if not self.path.exists():
            return empty()
        return parse(self.path.read_text(), self.path)

    def current(self) -> dict[str, str]:
        """Every alias that is set, mapped to the tag it points at."""
        return {a: s["tag"] for a, s in self.read()["aliases"].items() if s.get("tag")}

    def get(self, alias: str) -> str | None:
        """The tag an alias points at, or None."""
        return self.current().get(alias)

    def _update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Exclusive read-modify-write: `change` edits the document, which is then written.

        If `change` raises, nothing is written. Subclasses on other storage keep this
        contract (see `augrec.registry.objstore.ObjectAliasBook`).
        """
        with file_lock(self.lock_path):
            doc = self.read()
            result = change(doc)
            write_json(self.path, doc)
            return result

    def set(
        self,
        alias: str,
        tag: str,
        note: str = "",
        check: Callable[[str], None] | None = None,
    ) -> dict[str, Any] | None:
        """Point `alias` at `tag`; returns the history event, or None if it already did.

        `check(tag)` runs under the lock (e.g. "the version exists") and may raise.
        """
        check_alias(alias)

        def change(doc: dict[str, Any]) -> dict[str, Any] | None:
            if check is not None:
                check(tag)
            state = doc["aliases"].setdefault(alias, {"tag": None, "previous": [], "history": []})
            old = state.get("tag")
            if old == tag:
                return None
            if old is not None:
                state["previous"].append(old)
            return self._move(state, "promote", old, tag, note)

        return self._update(change)

    def rollback(
        self, alias: str, note: str = "", check: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Point `alias` back at the version it pointed at before its last promote."""
        check_alias(alias)

        def change(doc: dict[str, Any]) -> dict[str, Any]:
            state = doc["aliases"].get(alias)
            if not state or not state.get("tag"):
                raise RegistryError(f"alias {alias!r} is not set; nothing to roll back")
            if not state["previous"]:
                raise RegistryError(
                    f"alias {alias!r} has no previous version to roll back to "
                    f"(it points at {state['tag']}, its first version)"
                )
            target = state["previous"][-1]
            if check is not None:
                check(target)
            state["previous"].pop()
            return self._move(state, "rollback", state["tag"], target, note)

        return self._update(change)

    @staticmethod
    def _move(state: dict[str, Any], action: str, old: str | None, new: str, note: str) -> dict:
        event = {"at": now_iso(), "action": action, "from": old, "to": new, "user": _user()}
        if note:
            event["note"] = note
        state["tag"] = new
        state["updated_at"] = event["at"]
        state["history"].append(event)
        return event
