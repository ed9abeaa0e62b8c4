#!/usr/bin/env bash
# Makes Benchmarks/peer/.venv with the Python `comm` package, the baseline
# commhost-bench measures against. Does nothing when it is already there.
# Used by commhost-bench itself (when the venv is missing) and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
COMM_VERSION="0.2.3"
if [ -x .venv/bin/python ] && .venv/bin/python -c "import comm, sys; sys.exit(0 if comm.__version__ == '$COMM_VERSION' else 1)" 2>/dev/null; then
    exit 0
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "comm==$COMM_VERSION"
