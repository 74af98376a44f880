"""Hitless reconciliation: what a (re)connecting switch must be told, and nothing more.

When a switch connects (the controller restarted, or the switch's control connection came
back), it may already hold flows and groups: Open vSwitch in ``fail_mode=secure`` keeps
forwarding with them while no controller is there. The app reads them back
(OFPFlowStatsRequest, OFPGroupDescStatsRequest; ``ofmsg`` turns the replies into specs) and
:func:`diff` compares them with the desired state, so only what differs is sent, in
``Changes.ordered()`` (make-before-break) order. A flow or group that is already right is
left alone: its counters and duration go on, and no packet meets a gap.

Identity. A flow is identified in the switch by ``FlowSpec.key()`` (table, priority, match:
what OFPFC_ADD overwrites and OFPFC_DELETE_STRICT removes) and it is right when its actions
and cookie are equal too; a group by ``(dpid, group_id)`` and it is right when its type and
buckets are equal. The controller owns every flow and group of its switches (fail-secure
bridges that only it programs), so whatever the switch holds and the desired state lacks is
deleted, whatever its cookie. Pure Python, no os-ken: unit-tested on specs alone.
"""
from __future__ import annotations

from collections.abc import Iterable

from testbed.controller.logic import diff_state
from testbed.controller.specs import Changes, FlowSpec, GroupSpec
from testbed.errors import ControllerError


def _wanted(items: Iterable, what: str) -> dict:
    out: dict = {}
    for item in items:
        key = item.key()
        if key in out and out[key] != item:
            raise ControllerError(f"two different {what} share the key {key}: "
                                  f"{out[key]} and {item}")
        out[key] = item
    return out


class _Unclear:
    """What a switch holds under a key read back twice, differently: equal to nothing."""

    def __init__(self, item):
        self.item = item

    def key(self):
        return self.item.key()


def _held(items: Iterable) -> dict:
    out: dict = {}
    for item in items:
        key = item.key()
        out[key] = _Unclear(item) if key in out and out[key] != item else item
    return out


def diff(want_flows: Iterable[FlowSpec], want_groups: Iterable[GroupSpec],
         have_flows: Iterable[FlowSpec], have_groups: Iterable[GroupSpec]) -> Changes:
    """The changes that turn what a switch holds (``have_*``, read back from it) into the
    desired state (``want_*``): adds for flows missing or different (OFPFC_ADD overwrites
    a flow of the same key), deletes for flows not wanted; group adds, modifies and
    deletes likewise. Empty when the switch is already right.

    All specs are for one switch. Raises ControllerError when the desired state holds two
    different flows (or groups) with one key, which a switch cannot hold. What was read
    back twice under one key, differently, is rewritten (or deleted)."""
    want_f = _wanted(want_flows, "desired flows")
    want_g = _wanted(want_groups, "desired groups")
    have_f = _held(have_flows)
    have_g = _held(have_groups)
    ch = diff_state(have_f, have_g, want_f, want_g)
    ch.flow_dels = [_plain(f) for f in ch.flow_dels]
    ch.group_dels = [_plain(g) for g in ch.group_dels]
    return ch


def _plain(item):
    return item.item if isinstance(item, _Unclear) else item
