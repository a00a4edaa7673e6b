#!/usr/bin/env bash
# The main job, end to end, on a fresh machine: install, then `augrec run` — the whole
# Kubeflow pipeline through kfp.local on seeded demo data (ingest, Feast, train, gate,
# register, deploy). Extra arguments go to `augrec run` (e.g. --data FILE --augment auto).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/augrec run "$@"
