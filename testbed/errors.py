"""The testbed's exception hierarchy.

Every error the testbed raises on purpose derives from :class:`TestbedError`, so a CLI or a
scenario runner can catch that one class, print ``str(error)`` (which is written for a
human: it names the file, node or field and says what to do) and exit non-zero. Anything
else escaping is a bug.
"""


class TestbedError(Exception):
    """Base of every error the testbed raises on purpose."""

    __test__ = False       # a name starting "Test": pytest must not try to collect it


class TopologyError(TestbedError):
    """Bad topology data; the message names the file, node/edge, quirk and what to do."""


class EmulationError(TestbedError):
    """The emulated network could not be built, started or cleaned up."""


class KernelFeatureMissing(EmulationError):
    """A kernel feature the request needs (netem, the OVS module, ...) is not available."""


class ControllerError(TestbedError):
    """The SDN controller failed or refused a request."""


class ForwardingGraphError(ControllerError):
    """A forwarding graph cannot be installed (unknown node, no path, ...)."""
