"""The project image every component runs in; read once, when the components are defined."""

import os

DEFAULT_IMAGE = "ghcr.io/augrec/augrec:0.1.0"
# `augrec pipeline compile --image` sets this before the components are imported.
IMAGE = os.environ.get("AUGREC_IMAGE", DEFAULT_IMAGE)
