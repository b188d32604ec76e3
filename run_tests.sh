#!/usr/bin/env bash
# The project's one test command: installs the dev dependencies (./setup.sh --dev; instant when unchanged),
# then runs pytest with the defaults from the pytest configuration. Arguments go to pytest:
#   ./run_tests.sh
#   ./run_tests.sh tests/unit -x -k box
# pytest's exit status is this script's; "no tests collected" (pytest exit 5) is reported as a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

bash ./setup.sh --dev

rc=0
.venv/bin/python -m pytest "$@" || rc=$?

if [ "$rc" -eq 5 ]; then
    echo "run_tests.sh: FAILED: pytest collected no tests (exit 5). A green run must have run tests;" \
         "check the paths / -k / -m arguments and the test discovery settings." >&2
fi
exit "$rc"
