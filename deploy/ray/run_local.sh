#!/usr/bin/env bash
# sam3-api on Ray Serve on this machine: REPLICAS CPU replicas of the unchanged app behind one address, each
# request routed by its X-Sam3-Image-Key header to the replica that holds that image. Foreground; Ctrl-C or
# SIGTERM stops Serve and every Ray process this script started.
#
#   ./deploy/ray/run_local.sh                                   # 2 replicas on 127.0.0.1:8000
#   SAM3_MODEL=dev-tiny REPLICAS=2 PORT=8000 ./deploy/ray/run_local.sh
#
# Environment: REPLICAS (2), PORT (8000), HOST (127.0.0.1), RAY_NUM_CPUS (all cores), RAY_TMPDIR (Ray's
# session and log directory, default /tmp/ray), and the server's own settings (SAM3_*, HF_TOKEN,
# TORCH_NUM_THREADS: default cores / REPLICAS), which every replica reads. Installs .venv (./setup.sh) and
# deploy/ray/requirements.txt on first use.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO="$(pwd)"

if [ ! -x .venv/bin/python ]; then
    bash ./setup.sh
fi
if ! .venv/bin/python -c 'import ray.serve' >/dev/null 2>&1; then
    echo "[run_local] installing Ray Serve: pip install -r deploy/ray/requirements.txt"
    .venv/bin/python -m pip install -r deploy/ray/requirements.txt
fi

# The replicas import sam3_api (repository root); Serve imports sam3_serve and sam3_proxy (deploy/ray).
export PYTHONPATH="$REPO:$REPO/deploy/ray${PYTHONPATH:+:$PYTHONPATH}"
echo "[run_local] Ray Serve: REPLICAS=${REPLICAS:-2} HOST=${HOST:-127.0.0.1} PORT=${PORT:-8000}" \
     "SAM3_MODEL=${SAM3_MODEL:-facebook/sam3}"
exec .venv/bin/python deploy/ray/run_local.py
