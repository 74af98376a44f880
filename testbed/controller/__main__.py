"""``python -m testbed.controller CONFIG.json``: the controller process (``app.main``).

Started so rather than as ``python -m testbed.controller.app``: a module run as
``__main__`` is compiled from source at every start (no cached bytecode), which cost the
controller 60 ms of its start-up for ``app.py``.
"""
import sys

from testbed.controller.app import main

sys.exit(main())
