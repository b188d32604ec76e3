#!/usr/bin/env bash
# Start the sam3-api server: installs dependencies on the first run (./setup.sh, which returns at once when
# the requirement files are unchanged), then runs app.py in ./.venv.
#
# Configuration is the environment, passed through untouched: HOST, PORT, LOG_LEVEL, HF_TOKEN and every
# SAM3_* variable (see the README's settings table). Examples:
#   ./start_server.sh
#   SAM3_MODEL=dev-tiny ./start_server.sh        # tiny random model, offline, for trying the API
#   PORT=9000 SAM3_DEVICE=cpu ./start_server.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

bash ./setup.sh

echo "[start] python app.py (HOST=${HOST:-0.0.0.0} PORT=${PORT:-8000} SAM3_MODEL=${SAM3_MODEL:-facebook/sam3})"
exec .venv/bin/python app.py "$@"
