#!/usr/bin/env bash
# Build the rotation function's package: kb-mcp and its runtime dependencies, for the
# Lambda runtime (python3.12, Linux), as a zip for rotation_package_path (terraform).
#
#   secrets/build-rotation-package.sh build/rotation.zip [x86_64|aarch64]
set -euo pipefail

out="${1:?usage: build-rotation-package.sh OUT.zip [x86_64|aarch64]}"
arch="${2:-x86_64}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/wheel" "$root"
python3 -m pip install --quiet --target "$work/package" \
    --platform "manylinux2014_${arch}" --implementation cp --python-version 3.12 \
    --only-binary=:all: "$work"/wheel/*.whl
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
rm -f "$out"
(cd "$work/package" && python3 -m zipfile -c "$out" ./*)
echo "wrote $out"
