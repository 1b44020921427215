#!/usr/bin/env bash
# Build the rotation function's package: kb-mcp, secretswap and their runtime dependencies for the Lambda
# runtime (Linux, python3.12 by default), as a zip for rotation_package_path (terraform).
#
#   secrets/build-rotation-package.sh build/rotation.zip [x86_64|aarch64]
#
# Lambda takes a zip of at most 50 MB uploaded directly: the package drops what the
# function never loads (botocore's models of services other than Secrets Manager and STS,
# uvloop, bytecode caches). PYTHON_VERSION=3.11 builds for another runtime (the check below
# imports the handler with the local python when the versions match).
set -euo pipefail

case "${1:-}" in
    -h | --help)
        echo "usage: build-rotation-package.sh OUT.zip [x86_64|aarch64]"
        exit 0
        ;;
esac
out="${1:?usage: build-rotation-package.sh OUT.zip [x86_64|aarch64]}"
arch="${2:-x86_64}"
version="${PYTHON_VERSION:-3.12}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# kb-mcp and the hot-swap library it depends on (a folder of this repository, not on PyPI).
python3 -m pip wheel --quiet --no-deps --wheel-dir "$work/wheel" "$root/secretswap" "$root"
python3 -m pip install --quiet --target "$work/package" \
    --platform "manylinux2014_${arch}" --implementation cp --python-version "$version" \
    --only-binary=:all: "$work"/wheel/*.whl

pkg="$work/package"
for model in "$pkg"/botocore/data/*/; do
    case "$(basename "$model")" in
        secretsmanager | sts) ;;
        *) rm -rf "$model" ;;
    esac
done
rm -rf "$pkg"/uvloop "$pkg"/bin
find "$pkg" -name __pycache__ -type d -prune -exec rm -rf {} +

if [ "$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')" = "$version" ]; then
    # Only the standard library and the package: the handler and its imports must load.
    python3 -S -c "import sys; sys.path.insert(0, '$pkg'); import kb_mcp.ops.rotation.lambda_handler as h; assert callable(h.handler)"
fi

mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
rm -f "$out"
(cd "$pkg" && python3 -m zipfile -c "$out" ./*)
echo "wrote $out ($(du -k "$out" | cut -f1) KiB)"
