#!/usr/bin/env bash
# Build the serving Bento offline: a wheel of augrec, then `bentoml build` with
# services/bentofile.yaml from the repository root. Extra arguments go to `bentoml build`
# (e.g. --version). BENTOML_HOME must lie outside the repository: the build copies its
# context, and a store inside it would be copied into itself.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)
home=$(python3 -c 'import os,sys; print(os.path.realpath(os.path.expanduser(sys.argv[1])))' \
  "${BENTOML_HOME:-$HOME/bentoml}")
case "$home/" in
  "$root"/*) echo "BENTOML_HOME ($home) is inside the repository; point it elsewhere" >&2; exit 2 ;;
esac
PY=${PYTHON:-.venv/bin/python}
rm -f dist/augrec-*.whl
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .
BENTOML_DO_NOT_TRACK=${BENTOML_DO_NOT_TRACK:-true} "$PY" -m bentoml build -f services/bentofile.yaml . "$@"
