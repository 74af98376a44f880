"""Unit tests for the Topology model: specs, auto-assignment, validation, summary."""
import math

import pytest

from testbed import errors
from testbed.errors import TopologyError
from testbed.topology import EndpointSpec, LinkSpec, SwitchSpec, Topology


def _pair() -> Topology:
    topo = Topology("pair")
    topo.add_switch("s1")
    topo.add_switch("s2")
    topo.add_link("s1", "s2", bw_mbit=10)
    return topo


def test_topology_error_is_a_testbed_error():
    """TopologyError derives from TestbedError so one except clause catches every error."""
    assert issubclass(TopologyError, errors.TestbedError)


def test_auto_dpid_ip_mac_and_access_link():
    """Switches get dpids from 1; endpoints get 10.0.0.x, sequential MACs and an access link."""
    topo = _pair()
    h1 = topo.add_endpoint("h1", "s1", bw_mbit=5)
    h2 = topo.add_endpoint("h2", "s2")
    assert [s.dpid for s in topo.switches()] == [1, 2]
    assert h1 == EndpointSpec("h1", "s1", "10.0.0.1", "00:00:00:00:00:01")
    assert h2.ip == "10.0.0.2" and h2.mac == "00:00:00:00:00:02"
    assert topo.links()[1] == LinkSpec("h1", "s1", 5, 0.0, 0.0)
    assert topo.graph.nodes["h1"]["kind"] == "endpoint"
    assert isinstance(topo.graph.nodes["s1"]["spec"], SwitchSpec)


def test_auto_values_skip_explicit_ones():
    """Automatic dpids and IPs never collide with explicitly given ones."""
    topo = Topology("t")
    topo.add_switch("s1", dpid=1)
    topo.add_switch("s2")
    topo.add_link("s1", "s2")
    topo.add_endpoint("h1", "s1", ip="10.0.0.1")
    h2 = topo.add_endpoint("h2", "s2")
    assert topo.switch("s2").dpid == 2
    assert h2.ip != "10.0.0.1"
    topo.validate()


def test_links_keep_insertion_order():
    """links(), switches() and endpoints() return items in insertion order."""
    topo = Topology("t")
    for name in ("s3", "s1", "s2"):
        topo.add_switch(name)
    topo.add_link("s2", "s3")
    topo.add_link("s3", "s1")
    assert [(link.a, link.b) for link in topo.links()] == [("s2", "s3"), ("s3", "s1")]
    assert [s.name for s in topo.switches()] == ["s3", "s1", "s2"]


@pytest.mark.parametrize("action, message", [
    (lambda t: t.add_switch("s1"), "duplicate name 's1'"),
    (lambda t: t.add_link("s1", "s1"), "to itself"),
    (lambda t: t.add_link("s1", "s9"), "unknown switch 's9'"),
    (lambda t: t.add_link("s2", "s1"), "duplicate link"),
    (lambda t: t.add_endpoint("h1", "s9"), "unknown switch 's9'"),
    (lambda t: (t.add_endpoint("h1", "s1"), t.add_endpoint("h2", "h1")), "not a switch"),
    (lambda t: t.add_compute("n1", "s7", vcpu=1, memory_mb=1, disk_gb=1), "unknown switch"),
])
def test_add_refuses_structural_errors(action, message):
    """Adding a duplicate name, self-link, unknown or non-switch attachment raises at once."""
    topo = _pair()
    with pytest.raises(TopologyError, match=message):
        action(topo)


@pytest.mark.parametrize("build, message", [
    (lambda t: t.add_switch("s3", dpid=1), "dpid 1 already used by 's1'"),
    (lambda t: t.add_switch("s_too_long_name"), "must match"),
    (lambda t: t.add_switch("1s"), "must match"),
    (lambda t: t.add_switch("s3", role="router"), "role 'router'"),
    (lambda t: t.add_switch("s3", lat=95.0), "lat"),
    (lambda t: (t.add_endpoint("h1", "s1", ip="10.0.0.9"),
                t.add_endpoint("h2", "s2", ip="10.0.0.9")), "ip 10.0.0.9 already used"),
    (lambda t: (t.add_endpoint("h1", "s1", mac="00:00:00:00:00:09"),
                t.add_endpoint("h2", "s2", mac="00:00:00:00:00:09")), "already used"),
    (lambda t: t.add_endpoint("h1", "s1", ip="192.168.0.1"), "not a host address"),
    (lambda t: t.add_endpoint("h1", "s1", ip="10.0.0.300"), "not an IPv4"),
    (lambda t: t.add_endpoint("h1", "s1", mac="01:00:00:00:00:01"), "multicast"),
    (lambda t: t.add_endpoint("h1", "s1", mac="zz"), "mac"),
    (lambda t: t.add_compute("n1", "s1", vcpu=0, memory_mb=1, disk_gb=1), "vcpu 0"),
    (lambda t: t.add_compute("n1", "s1", vcpu=1, memory_mb=-5, disk_gb=1), "memory_mb -5"),
    (lambda t: (t.add_switch("s3"), t.add_link("s3", "s1", bw_mbit=-1)), "bw_mbit is -1"),
    (lambda t: (t.add_switch("s3"), t.add_link("s3", "s1", bw_mbit=math.nan)), "bw_mbit is nan"),
    (lambda t: (t.add_switch("s3"), t.add_link("s3", "s1", delay_ms=-2)), "delay_ms is -2"),
    (lambda t: (t.add_switch("s3"), t.add_link("s3", "s1", loss_pct=101)), "loss_pct is 101"),
    (lambda t: t.add_switch("s3"), "2 disconnected parts"),
])
def test_validate_reports_problem(build, message):
    """validate() raises TopologyError describing each bad name, address, value or part."""
    topo = _pair()
    build(topo)
    with pytest.raises(TopologyError, match=message):
        topo.validate()


def test_validate_lists_every_problem_at_once():
    """validate() reports all problems in one error rather than stopping at the first."""
    topo = _pair()
    topo.add_switch("s3", role="router")
    with pytest.raises(TopologyError) as info:
        topo.validate()
    assert "role 'router'" in str(info.value) and "disconnected" in str(info.value)
    assert "2 problem(s)" in str(info.value)


def test_validate_empty_topology():
    """A topology without switches is invalid."""
    with pytest.raises(TopologyError, match="no switches"):
        Topology("empty").validate()


def test_validate_catches_raw_graph_edits():
    """A node added to the graph behind the model's back is reported, not silently used."""
    topo = _pair()
    topo.graph.add_node("x")
    with pytest.raises(TopologyError, match="graph node 'x'"):
        topo.validate()


def test_lookup_errors_and_sites():
    """switch()/endpoint() raise TopologyError for unknown names; sites() keeps first-seen order."""
    topo = Topology("t")
    topo.add_switch("s1", site="b")
    topo.add_switch("s2", site="a")
    topo.add_switch("s3", site="b")
    assert topo.sites() == ["b", "a"]
    with pytest.raises(TopologyError):
        topo.switch("nope")
    with pytest.raises(TopologyError):
        topo.endpoint("s1")


def test_needs_netem_and_summary():
    """needs_netem is true only with delay or loss; summary totals capacities and delay."""
    topo = _pair()
    topo.add_compute("n1", "s1", vcpu=2, memory_mb=100, disk_gb=3)
    topo.add_compute("n2", "s2", vcpu=4, memory_mb=200, disk_gb=5)
    topo.add_endpoint("h1", "s1")
    assert not topo.needs_netem()
    topo.add_switch("s3")
    topo.add_link("s2", "s3", delay_ms=7.5)
    assert topo.needs_netem()
    summary = topo.summary()
    assert summary["vcpu"] == 6 and summary["memory_mb"] == 300 and summary["disk_gb"] == 8
    assert summary["diameter"] == 2 and summary["max_link_delay_ms"] == 7.5
    assert summary["switches"] == 3 and summary["endpoints"] == 1 and summary["links"] == 3
