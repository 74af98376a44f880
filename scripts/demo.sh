#!/usr/bin/env bash
# Set up (idempotent) and run the main job: the default scenario (a 3-VNF chain on fat-tree
# k=4 under load loses a link; the controller reroutes; outage measured with real packets),
# writing results and plots to results/chain_heal_link/<run-id>/. Extra arguments go to
# `testbed run` (e.g. --seed 7 --duration 30 --set rate=800).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/install.sh
exec .venv/bin/testbed run scenarios/chain_heal_link.py "$@"
