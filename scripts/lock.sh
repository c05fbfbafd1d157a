#!/usr/bin/env bash
# Re-resolve both locked environments from their inputs (pyproject.toml, requirements-triton-stub.in).
# Run after changing a dependency bound; commit the lock files it writes.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
common=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet)
"$uv" pip compile pyproject.toml --extra dev "${common[@]}" -o requirements.lock
"$uv" pip compile requirements-triton-stub.in "${common[@]}" -o requirements-triton-stub.lock
echo "locked: requirements.lock, requirements-triton-stub.lock"
