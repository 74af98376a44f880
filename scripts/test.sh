#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: unit tests, then the integration tests
# with real Mininet, Open vSwitch and the controller. Run as root from a clean clone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/install.sh
exec .venv/bin/python -m pytest -q "$@"
