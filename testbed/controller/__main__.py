"""``python -m testbed.controller CONFIG.json``: the controller process (``app.main``).

Started so rather than as ``python -m testbed.controller.app``: a module run with ``-m``
is compiled from its source whenever its cached bytecode is missing or stale, and that
bytecode is never written then; after an install or an edit, ``app.py`` (60 ms) was
compiled at every start of the controller. Imported, it is compiled once.
"""
import sys

from testbed.controller.app import main

sys.exit(main())
