"""Errors users are meant to read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One kind of problem found in an input, with how often it occurred and examples."""

    kind: str
    field: str
    count: int
    message: str
    examples: list[str] = field(default_factory=list)

    def render(self) -> str:
        """One readable paragraph: what is wrong, where, how often, and a few rows."""
        where = f" field '{self.field}'" if self.field not in ("", "*") else ""
        text = f"[{self.kind}]{where}: {self.message}"
        if self.count:
            text += f" ({self.count} row{'' if self.count == 1 else 's'})"
        if self.examples:
            text += "\n    e.g. " + "\n         ".join(self.examples)
        return text


class AugrecError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class DataValidationError(AugrecError):
    """An input file broke the data contract; carries one `Problem` per kind."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} kind(s) of problem; nothing was written."]
        lines += [p.render() for p in problems]
        super().__init__("\n".join(lines))


class ConfigError(AugrecError):
    """A configuration value is invalid; the message names the field and value."""


class RegistryError(AugrecError):
    """A registry operation was refused (unknown version, unset alias, failed gate, ...)."""
