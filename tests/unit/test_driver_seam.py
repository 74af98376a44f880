"""The emulated driver's side of the MANO seam (pure logic, no emulation): the testbed's
own exceptions cross into ``mano`` as ``MANOError`` classes, so mano's fallbacks run."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from mano.errors import InfrastructureError, NotFoundError
from mano.nfvi import NfviDriver
from testbed.errors import ControllerError
from testbed.nfvi.emulated.driver import EmulatedDriver
from testbed.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


class RefusingController:
    """A northbound client whose controller refuses every graph (as a real one does for an
    unknown hop)."""

    def put_graph(self, graph):
        raise ControllerError(f"graph {graph['name']}: no path from h1 to nowhere")

    def delete_graph(self, name):
        raise ControllerError("controller not reachable")


def _driver() -> EmulatedDriver:
    emu = SimpleNamespace(topology=load_topology(ROOT / "topologies" / "fat_tree4.yaml"),
                          ctl=RefusingController(), hosts={}, attachments={})
    return EmulatedDriver(emu)


def test_controller_errors_become_infrastructure_errors():
    """A refused graph raises InfrastructureError naming the call and the reason."""
    drv = _driver()
    with pytest.raises(InfrastructureError, match="put_graph: graph web.fg1: no path"):
        drv.put_graph({"name": "web.fg1"})
    with pytest.raises(InfrastructureError, match="delete_graph: controller not reachable"):
        drv.delete_graph("web.fg1")


def test_unknown_instances_are_not_found_and_bad_requests_are_infrastructure_errors():
    """An instance the driver does not know is NotFoundError; an unknown compute node or
    program is an InfrastructureError that says what would be valid."""
    drv = _driver()
    with pytest.raises(NotFoundError, match="no instance 'x'"):
        drv.restart_instance("x")
    with pytest.raises(InfrastructureError, match="unknown compute node 'n99'"):
        drv.create_instance("x", "n99", None, SimpleNamespace(program="forwarder"))
    with pytest.raises(InfrastructureError, match="known: forwarder, firewall, nat, lb"):
        drv.create_instance("x", "n1", None, SimpleNamespace(program="vpp"))


def test_the_driver_declares_the_whole_protocol():
    """Every call of the NfviDriver Protocol exists on the emulated driver."""
    assert isinstance(_driver(), NfviDriver)
