"""The MANO stack's errors. All derive from ``MANOError`` (itself a ``TestbedError``-free
base so that ``mano`` imports nothing from ``testbed``); each message says what was wrong,
where, and what would be valid."""


class MANOError(Exception):
    """Base of every error the MANO stack raises on purpose."""


class DescriptorError(MANOError):
    """A VNFD or NSD is invalid: the message names the file, the field path and what is valid."""


class PlacementError(MANOError):
    """No compute node can host an instance: names the resource that is short and where."""


class ConflictError(MANOError):
    """The operation conflicts with another (one operation at a time per instance) or with
    the state of the resource (e.g. deleting an NSD that is in use)."""


class NotFoundError(MANOError):
    """An identifier names nothing known."""


class InfrastructureError(MANOError):
    """The NFVI driver failed to do what was asked."""
