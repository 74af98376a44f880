"""Unit tests for the topology builders (fat-tree, leaf-spine, linear, WAN)."""
import pytest

from testbed.errors import TopologyError
from testbed.topology import BUILDERS, fat_tree, leaf_spine, linear, wan


def _roles(topo):
    counts = {}
    for s in topo.switches():
        counts[s.role] = counts.get(s.role, 0) + 1
    return counts


def test_fat_tree_4_counts():
    """fat_tree(4) has 4 core, 8 agg, 8 edge switches, 16 hosts, 8 computes, diameter 4."""
    topo = fat_tree(4)
    assert _roles(topo) == {"core": 4, "agg": 8, "edge": 8}
    assert len(topo.endpoints()) == 16 and len(topo.computes) == 8
    assert topo.summary()["switch_links"] == 32
    assert topo.summary()["diameter"] == 4
    assert {c.switch for c in topo.computes.values()} == {f"e{i}" for i in range(1, 9)}
    assert topo.computes["n1"].vcpu == 8 and topo.computes["n1"].memory_mb == 16384


def test_fat_tree_8_counts():
    """fat_tree(8) has 80 switches, 128 hosts and 32 compute nodes with short names."""
    topo = fat_tree(8, bw_mbit=100)
    assert len(topo.switches()) == 80 and len(topo.endpoints()) == 128
    assert len(topo.computes) == 32
    assert max(len(n) for n in topo.graph) <= 10
    assert all(link.bw_mbit == 100 for link in topo.links())
    assert not topo.needs_netem()


def test_fat_tree_wiring():
    """Each core reaches every pod once; each edge switch reaches its pod's k/2 aggs."""
    topo = fat_tree(4)
    g = topo.graph
    assert all(g.degree(f"c{i}") == 4 for i in range(1, 5))
    assert all(sum(1 for n in g[f"e{i}"] if n.startswith("a")) == 2 for i in range(1, 9))
    assert all(g.degree(f"a{i}") == 4 for i in range(1, 9))


def test_fat_tree_options():
    """hosts_per_edge and compute override the defaults."""
    topo = fat_tree(2, hosts_per_edge=3, compute={"vcpu": 2})
    assert len(topo.endpoints()) == 6
    assert topo.computes["n1"].vcpu == 2 and topo.computes["n1"].disk_gb == 200


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 3}, "k must be even"),
    ({"k": 0}, "k must be >= 2"),
    ({"k": "4"}, "k must be an integer"),
    ({"k": 4, "hosts_per_edge": 0}, "hosts_per_edge must be >= 1"),
    ({"k": 4, "compute": {"cpus": 2}}, "unknown key 'cpus'"),
    ({"k": 4, "bw_mbit": -1}, "bw_mbit is -1"),
])
def test_fat_tree_bad_parameters(kwargs, message):
    """Bad fat-tree parameters raise TopologyError naming the parameter and valid values."""
    with pytest.raises(TopologyError, match=message):
        fat_tree(**kwargs)


def test_leaf_spine_counts():
    """leaf_spine(2, 4, 2) links every leaf to every spine: 6 switches, 8 hosts, diameter 2."""
    topo = leaf_spine(2, 4, 2)
    assert _roles(topo) == {"spine": 2, "leaf": 4}
    assert len(topo.endpoints()) == 8 and len(topo.computes) == 4
    assert topo.summary()["switch_links"] == 8 and topo.summary()["diameter"] == 2


@pytest.mark.parametrize("args, message", [
    ((0, 4, 2), "spines must be >= 1"),
    ((2, 4, 0), "servers_per_leaf must be >= 1"),
    ((2, 4.5, 1), "leaves must be an integer"),
])
def test_leaf_spine_bad_parameters(args, message):
    """Zero servers, zero spines or non-integers are refused with the parameter's name."""
    with pytest.raises(TopologyError, match=message):
        leaf_spine(*args)


def test_linear_counts():
    """linear(5, hosts_per_switch=2) is a chain with diameter 4, 10 hosts and 5 computes."""
    topo = linear(5, hosts_per_switch=2)
    assert len(topo.switches()) == 5 and len(topo.endpoints()) == 10
    assert len(topo.computes) == 5 and topo.summary()["diameter"] == 4


def test_linear_single_switch():
    """A one-switch linear topology is valid and has diameter 0."""
    assert linear(1).summary()["diameter"] == 0


def test_wan_sites_and_delay():
    """wan() makes a site switch, endpoint and compute per site; links carry delay."""
    topo = wan(["lisbon", "paris", "berlin"], [("lisbon", "paris"), ("paris", "berlin", 4.0)],
               delay_ms=12.0)
    assert topo.sites() == ["lisbon", "paris", "berlin"]
    assert [s.role for s in topo.switches()] == ["site"] * 3
    assert len(topo.endpoints()) == 3 and topo.computes["n1"].vcpu == 16
    assert [link.delay_ms for link in topo.links()[:2]] == [12.0, 4.0]
    assert topo.needs_netem()


def test_wan_counted_sites():
    """An integer number of sites names them site1..siteN."""
    topo = wan(2, [("site1", "site2")])
    assert topo.sites() == ["site1", "site2"]


@pytest.mark.parametrize("sites, links, message", [
    (["a", "b"], [("a", "c")], "unknown site 'c'"),
    (["a", "b"], [("a",)], r"links\[0\]"),
    (["a", "a"], [], "duplicate site"),
    ([], [], "sites must be"),
    (["a", "b", "c"], [("a", "b")], "disconnected"),
])
def test_wan_bad_parameters(sites, links, message):
    """Unknown sites, malformed pairs, duplicates and unconnected sites are refused."""
    with pytest.raises(TopologyError, match=message):
        wan(sites, links)


def test_registry():
    """BUILDERS maps the YAML builder types to the builder functions."""
    assert BUILDERS["fat_tree"] is fat_tree and BUILDERS["leaf_spine"] is leaf_spine
    assert BUILDERS["linear"] is linear
