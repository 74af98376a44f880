"""The SDN controller: installs VNF forwarding graphs on the Open vSwitch fabric.

Faucet's layering, in three modules:

- ``specs``: the data types, pure data. Forwarding graphs and topology facts come in
  (:class:`~testbed.controller.specs.ForwardingGraphSpec`, ``Link``, ``Attachment``);
  flow and group specs go out, grouped in a :class:`~testbed.controller.specs.Changes`.
- ``logic``: :class:`~testbed.controller.logic.Fabric`, plain Python with no os-ken
  import. It computes paths, VLAN steering and fast-failover groups, keeps the desired
  state of every switch and answers each event with the minimal ``Changes``.
- ``app`` / ``ofmsg``: the thin os-ken shim that decodes OpenFlow events, calls the logic
  and turns specs into OpenFlow 1.3 messages (the only place that builds them).
"""
