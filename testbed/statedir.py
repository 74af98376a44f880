"""Where ``testbed up`` keeps its state (``--state DIR``): a plain path, no emulator import.

The CLI needs the default at start-up for every command's help, including on a machine
without Mininet (simulated runs, reports, topology checks), so it lives here rather than in
``testbed.daemon``, which imports the emulator. The directory's files are described in
``testbed.daemon``.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STATE = Path(os.environ.get("TESTBED_STATE", "/var/lib/testbed"))
