"""The `augrec` command line (see `augrec.cli.main`)."""

from augrec.cli.main import app, main

__all__ = ["app", "main"]
