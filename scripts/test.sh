#!/usr/bin/env bash
# Install everything the tests need (system packages too, when run as root) and run the
# default test tier. Extra arguments go to pytest (e.g. `-m slow`, `-k loaders`).
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
for pkg_bin in $(cat scripts/system-packages.txt 2>/dev/null | grep -v '^#' || true); do
  pkg=${pkg_bin%%:*}; bin=${pkg_bin##*:}
  command -v "$bin" >/dev/null || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing system packages: ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "==> missing system packages (tests needing them will skip): ${need_apt[*]}"
  fi
fi
bash scripts/setup.sh
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
exec .venv/bin/python -m pytest "$@"
