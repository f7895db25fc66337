#!/usr/bin/env bash
# Refreshes the console's charting library (uPlot, MIT) from the npm registry: the package ships these
# files so users need neither npm nor a build. Pinned by version and by the tarball's SHA-256.
set -euo pipefail
VERSION=1.6.32
SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
DEST="$(cd "$(dirname "$0")/.." && pwd)/csms_server/console/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "uplot@$VERSION" --silent >/dev/null)
echo "$SHA256  $work/uplot-$VERSION.tgz" | sha256sum --check --quiet
tar -xzf "$work/uplot-$VERSION.tgz" -C "$work"
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" "$DEST/"
cp "$work/package/LICENSE" "$DEST/uPlot.LICENSE"
echo "uPlot $VERSION in $DEST"
