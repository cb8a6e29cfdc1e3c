#!/usr/bin/env bash
# Installs, idempotently, everything loom's build, tests, demo and benchmarks
# need on a Debian machine:
#   - the Debian packages listed in tools/debian-packages.txt (apt-get),
#   - a project virtualenv .venv/ with the pinned PyPI packages of
#     requirements.txt.
# Running it twice is cheap: apt-get and pip skip what is already there.
#
# Environment:
#   LOOM_SKIP_APT=1    do not call apt-get (no root, packages already present)
#   LOOM_SKIP_TORCH=1  leave PyTorch out (torch-reference tests and benches skip)
#   LOOM_SKIP_MXNET=1  leave out .venv-mxnet, MXNet 1.9.1 for the engine benchmark
#   LOOM_SKIP_NUMPY1=1 leave out .venv-numpy1, NumPy 1.26 for tests/python/test_numpy1.py
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf '[bootstrap] %s\n' "$*"; }

packages=$(grep -v '^\s*#' tools/debian-packages.txt | awk 'NF {print $1}')
if [ "${LOOM_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    log "apt-get install ${missing[*]}"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    log "Debian packages: all present"
  fi
fi

# The virtualenv is made from Debian's own interpreter so that the headers
# (python3-dev) and the interpreter always match, whatever else is on PATH.
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $python"
  "$python" -m venv .venv
fi

requirements=requirements.txt
if [ "${LOOM_SKIP_TORCH:-0}" = 1 ]; then
  requirements=$(mktemp)
  grep -v '^torch==' requirements.txt > "$requirements"
fi
# pip resolves pinned, already-installed requirements without downloading.
log "pip install -r requirements.txt"
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements"
# A side virtualenv: $1 its directory, $2 its requirements file, $3 what is
# lost without it. Optional: a failure only warns.
side_venv() {
  log "pip install -r $2 (into $1)"
  if { [ -x "$1/bin/python" ] || "$python" -m venv "$1"; } &&
     "$1/bin/python" -m pip install -q --disable-pip-version-check -r "$2"; then
    :
  else
    log "warning: $1 did not install; $3"
  fi
}
# MXNet's engine is the engine benchmark's reference; it pins an old NumPy.
if [ "${LOOM_SKIP_MXNET:-0}" != 1 ]; then
  side_venv .venv-mxnet bench/requirements-mxnet.txt "the engine benchmark runs without its MXNet reference"
fi
# NumPy 1.26 beside the main environment's 2.x: tests/python/test_numpy1.py
# runs part of the suite there against the same build.
if [ "${LOOM_SKIP_NUMPY1:-0}" != 1 ]; then
  side_venv .venv-numpy1 tests/requirements-numpy1.txt "tests/python/test_numpy1.py will skip"
fi
log "done: .venv/bin/python has $(.venv/bin/python -c 'import sys; print(sys.version.split()[0])')"
