"""Fault primitives every NFVI shares (``ExperimentNfvi``'s fault methods), written once.

Faults compose by holds: each switch link carries the set of active faults holding it down
(a switch fault holds every link of the switch); the link goes down with the first hold and
up with the last release, whatever order faults start and end in, so overlapping faults on
one element never undo each other. VNF and compute-node faults are carried out by the NFVI's
driver (``kill_instance``, ``hang_instance``, ``fail_compute_node``,
``recover_compute_node``).

A class using ``FaultHolds`` provides ``driver``, ``switch_links()``,
``_switch_peers(switch)`` (raising ``TestbedError`` for an unknown switch) and
``_set_link(a, b, up)`` (what a link going down or up means on that NFVI), and calls
``_init_holds()`` in its constructor.
"""
from __future__ import annotations

import threading

from mano.errors import NotFoundError
from testbed.errors import TestbedError
from testbed.nfvi.api import Undo


class FaultHolds:
    """The fault methods of ``ExperimentNfvi`` (see the module docstring)."""

    def _init_holds(self) -> None:
        self._holds: dict[frozenset, set[str]] = {}
        self._holds_lock = threading.RLock()     # faults are applied from worker threads

    def _set_link(self, a: str, b: str, up: bool) -> None:
        raise NotImplementedError

    def _switch_peers(self, switch: str) -> list[str]:
        raise NotImplementedError

    def _hold(self, a: str, b: str, hold: str) -> None:
        with self._holds_lock:
            holders = self._holds.setdefault(frozenset((a, b)), set())
            first = not holders
            holders.add(hold)
            if first:
                self._set_link(a, b, False)

    def _release(self, a: str, b: str, hold: str) -> None:
        key = frozenset((a, b))
        with self._holds_lock:
            holders = self._holds.get(key, set())
            if hold not in holders:
                return
            holders.discard(hold)
            if not holders:
                self._holds.pop(key, None)
                self._set_link(a, b, True)

    def fail_link(self, a: str, b: str, hold: str) -> Undo:
        """Hold link a-b down for fault ``hold``; the undo releases that hold (idempotent).
        Raises ``TestbedError`` when a-b is not a link between two switches."""
        if tuple(sorted((a, b))) not in set(self.switch_links()):
            raise TestbedError(f"link {a}-{b}: no such link between switches")
        self._hold(a, b, hold)
        return lambda: self._release(a, b, hold)

    def fail_switch(self, switch: str, hold: str) -> Undo:
        """Hold every link of ``switch`` down for fault ``hold``."""
        peers = self._switch_peers(switch)
        for p in peers:
            self._hold(switch, p, hold)

        def undo():
            for p in peers:
                self._release(switch, p, hold)
        return undo

    def fail_compute_node(self, node: str) -> Undo:
        """The node's instances die; it takes no new ones until the undo."""
        self.driver.fail_compute_node(node)
        return lambda: self.driver.recover_compute_node(node)

    def crash_instance(self, instance_id: str) -> None:
        """The instance's VNF program dies at once."""
        self.driver.kill_instance(instance_id)

    def hang_instance(self, instance_id: str) -> Undo:
        """The instance stops forwarding, alive; the undo resumes it if it still exists."""
        self.driver.hang_instance(instance_id, True)

        def undo():
            try:
                self.driver.hang_instance(instance_id, False)
            except NotFoundError:
                pass   # healed by recreation meanwhile: nothing left to resume
        return undo
