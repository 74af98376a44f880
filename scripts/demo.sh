#!/usr/bin/env bash
# Set up (idempotent) and run the main job: bring up the default data center, deploy a VNF
# chain, cut a link under a probe, and print and write the measured outage to results/.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/install.sh
exec .venv/bin/testbed demo "$@"
