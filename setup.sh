#!/usr/bin/env bash
# Install sam3-api's dependencies into ./.venv. Install only: ./start_server.sh runs the server.
#
#   ./setup.sh           runtime dependencies (requirements.txt)
#   ./setup.sh --dev     plus the test dependencies (requirements-dev.txt)
#   ./setup.sh --force   run pip even when nothing changed
#
# requirements-no-deps.txt is installed with --no-deps after the others (see that file for why).
#
# Idempotent and fast: after a successful install a stamp in .venv records the sha256 of the requirement
# files (and the Python version); while they are unchanged pip is not run at all, so start_server.sh and
# run_tests.sh can call this every time. PYTHON=/path/to/python3.x picks the interpreter for a new .venv.
# No GPU-specific steps: torch 2.14.1 from PyPI is already a CUDA build on Linux.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

VENV=.venv
DEV=0
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --dev) DEV=1 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (use --dev, --force or --help)" >&2; exit 2 ;;
    esac
done

say() { echo "[setup] $*"; }

# A usable interpreter prints nothing and exits 0 here.
version_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' >/dev/null 2>&1
}

find_python() {
    local cand
    if [ -n "${PYTHON:-}" ]; then
        if version_ok "$PYTHON"; then echo "$PYTHON"; return 0; fi
        echo "setup.sh: PYTHON=$PYTHON is not a working Python >= 3.10" >&2
        return 1
    fi
    # 3.11 is the version the pins were tested with; the others are accepted.
    for cand in python3.11 python3.12 python3.13 python3.10 python3 python; do
        if command -v "$cand" >/dev/null 2>&1 && version_ok "$cand"; then
            echo "$cand"
            return 0
        fi
    done
    echo "setup.sh: no Python >= 3.10 found (3.11 recommended). Install one, or set PYTHON=/path/to/python3.11" >&2
    return 1
}

# --- the virtual environment -------------------------------------------------------------------------
VPY="$VENV/bin/python"
if [ -d "$VENV" ] && ! version_ok "$VPY"; then
    if [ -f "$VENV/pyvenv.cfg" ]; then
        say "$VENV exists but its Python does not run (moved, or its interpreter removed); recreating it"
        rm -rf "$VENV"
    else
        echo "setup.sh: $VENV exists but is not a virtual environment; move it away and run again" >&2
        exit 1
    fi
fi
if [ ! -d "$VENV" ]; then
    PY="$(find_python)"
    say "creating $VENV with $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
    if ! "$PY" -m venv "$VENV"; then
        echo "setup.sh: '$PY -m venv' failed. On Debian/Ubuntu install the venv module:" \
             "apt-get install python3-venv (or python3.11-venv)" >&2
        rm -rf "$VENV"
        exit 1
    fi
fi

# --- stamps: skip pip when the requirement files are unchanged ------------------------------------------
# The digest covers the file names and contents plus the venv's Python version.
digest() {
    "$VPY" -c 'import hashlib, sys
h = hashlib.sha256(sys.version.encode())
for name in sys.argv[1:]:
    h.update(name.encode() + b"\0")
    with open(name, "rb") as f:
        h.update(f.read())
print(h.hexdigest())' "$@"
}

RUNTIME_STAMP="$VENV/.sam3-api-requirements.sha256"
DEV_STAMP="$VENV/.sam3-api-requirements-dev.sha256"
runtime_digest="$(digest requirements.txt requirements-no-deps.txt)"
if [ "$DEV" = 1 ]; then
    dev_digest="$(digest requirements.txt requirements-no-deps.txt requirements-dev.txt deploy/ray/requirements.txt)"
    STAMP="$DEV_STAMP"; WANT="$dev_digest"; FILES=(-r requirements-dev.txt); WHAT="runtime + dev"
else
    STAMP="$RUNTIME_STAMP"; WANT="$runtime_digest"; FILES=(-r requirements.txt); WHAT="runtime"
fi

if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
    say "$WHAT dependencies in $VENV are up to date (requirement files unchanged); nothing to do"
    exit 0
fi

# --- install ---------------------------------------------------------------------------------------------
start=$SECONDS
say "upgrading pip in $VENV"
"$VPY" -m pip install --upgrade pip
say "installing $WHAT dependencies: pip install ${FILES[*]}"
"$VPY" -m pip install "${FILES[@]}"
say "installing requirements-no-deps.txt without their dependencies: pip install --no-deps -r requirements-no-deps.txt"
"$VPY" -m pip install --no-deps -r requirements-no-deps.txt

# Written only after pip succeeded, so a failed or interrupted install is retried next time.
# requirements-dev.txt includes requirements.txt, so a dev install also satisfies a runtime one.
echo "$runtime_digest" > "$RUNTIME_STAMP"
if [ "$DEV" = 1 ]; then echo "$dev_digest" > "$DEV_STAMP"; fi

"$VPY" -c 'import torch
cuda = torch.cuda.is_available()
name = torch.cuda.get_device_name(0) if cuda else "none (the server will run on CPU)"
print(f"[setup] torch {torch.__version__}; CUDA GPU: {name}")'
say "done in $((SECONDS - start))s. Start the server with ./start_server.sh"
