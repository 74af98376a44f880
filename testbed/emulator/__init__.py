"""The emulator: a topology brought up as Mininet hosts and Open vSwitch switches.

``Emulation`` (in ``net.py``) is the context manager; ``clean()`` removes the leftovers of
runs that were killed before they could tear down (``testbed clean``).
"""
from testbed.emulator.cleanup import clean
from testbed.emulator.net import Emulation

__all__ = ["Emulation", "clean"]
