#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: install, generate demo data, train and
# evaluate every model, print the comparison. Extra arguments go to `augrec demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/augrec demo "$@"
