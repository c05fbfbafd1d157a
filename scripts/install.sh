#!/usr/bin/env bash
# Install what Shipyard needs on this machine, skipping what is already there.
#
#   system programs (Debian): prometheus + promtool, redis-server, prometheus-redis-exporter
#   .venv/                   : the main environment, exactly requirements.lock, plus the Triton
#                              server binary (nvidia-pytriton, without its numpy<2 dependencies)
#   .venv/triton-stub/       : numpy<2 + onnxruntime for Triton's Python-backend stub
#
# Idempotent: a stamp holds the hash of the lock files; when it matches, the Python step is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${SHIPYARD_VENV:-.venv}
PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.8
PYTRITON_VERSION=0.7.0
STAMP="$VENV/.shipyard-install"
APT_PACKAGES=(prometheus redis-server prometheus-redis-exporter)

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

started=$(date +%s)

# 1. System programs ---------------------------------------------------------------------------
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v promtool >/dev/null || missing+=(prometheus)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" = 0 ]; then as_root() { "$@"; }; elif sudo -n true 2>/dev/null; then
        as_root() { sudo "$@"; }
    else
        die "missing ${missing[*]}: install them with \`sudo apt-get install -y --no-install-recommends ${missing[*]}\` and run make again"
    fi
    command -v apt-get >/dev/null ||
        die "missing ${missing[*]} and no apt-get here: install them with your package manager"
    say "installing ${missing[*]} (apt)"
    # Debian starts packaged services on install; on a host with systemd that would take the
    # ports Shipyard uses. policy-rc.d forbids those starts for the duration of the install.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        trap 'as_root rm -f "$policy"' EXIT
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod +x "$policy"
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
else
    say "system programs present: ${APT_PACKAGES[*]}"
fi

# 2. Python environments ------------------------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null ||
    die "Shipyard needs Python 3.11 (Triton's backend stub is built for it): set PYTHON=/path/to/python3.11"

wanted=$( (cat requirements.lock requirements-triton-stub.lock pyproject.toml; echo "$PYTRITON_VERSION $UV_VERSION bytecode") | sha256sum | cut -d' ' -f1)
venv_is_311() { "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; }
if [ -x "$VENV/bin/python" ] && ! venv_is_311; then
    die "$VENV was made with another Python than 3.11: remove it (rm -rf $VENV) and run make again"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] && [ -x "$VENV/bin/shipyard" ] &&
    [ -x "$VENV/triton-stub/bin/python3" ]; then
    say "Python environments up to date ($VENV)"
else
    [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
    if ! "$VENV/bin/uv" --version 2>/dev/null | grep -qx "uv $UV_VERSION"; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    fi
    # Compiled at install, as pip and container images do: every pipeline task, CLI call and
    # server is a fresh interpreter, and where PYTHONDONTWRITEBYTECODE is set nothing would ever
    # cache the compilation (measured: about 40% of each process's import time).
    uv=("$VENV/bin/uv" pip)
    compiled=(--compile-bytecode)
    say "syncing $VENV with requirements.lock"
    "${uv[@]}" sync --quiet "${compiled[@]}" --python "$VENV/bin/python" requirements.lock
    # nvidia-pytriton pins numpy<2; only its bundled Triton server is used, never its Python API.
    "${uv[@]}" install --quiet "${compiled[@]}" --python "$VENV/bin/python" --no-deps \
        "nvidia-pytriton==$PYTRITON_VERSION"
    "${uv[@]}" install --quiet --python "$VENV/bin/python" --no-deps --editable .
    stub="$VENV/triton-stub"
    if [ ! -x "$stub/bin/python3" ]; then
        base=$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')
        "$VENV/bin/uv" venv --quiet --python "$base" "$stub"
    fi
    say "syncing $stub with requirements-triton-stub.lock"
    "${uv[@]}" sync --quiet "${compiled[@]}" --python "$stub/bin/python" requirements-triton-stub.lock
    echo "$wanted" >"$STAMP"
fi

say "install done in $(($(date +%s) - started))s"
