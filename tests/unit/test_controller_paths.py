"""The fabric's own shortest-path search returns exactly networkx's path, on whole graphs
and with the node or edge a backup path avoids, so replacing networkx in the controller's
hot path changed no route."""
from __future__ import annotations

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

from testbed.controller.paths import shortest_path


@st.composite
def graphs(draw):
    """An undirected graph on 2..16 switches, edges added in a drawn order."""
    n = draw(st.integers(2, 16))
    nodes = [f"s{i}" for i in draw(st.permutations(range(n)))]
    pairs = [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1:]]
    edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs)))
    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    return g


def _nx_path(view, a, b):
    try:
        return nx.shortest_path(view, a, b)
    except nx.NetworkXNoPath:
        return None


@settings(max_examples=300, deadline=None)
@given(graphs(), st.data())
def test_same_path_as_networkx(g, data):
    """Whole graph, one node hidden, one edge hidden: the path equals networkx's."""
    adj = {v: tuple(g.adj[v]) for v in g}
    nodes = list(g)
    a, b = data.draw(st.sampled_from(nodes)), data.draw(st.sampled_from(nodes))
    assert shortest_path(adj, a, b) == _nx_path(g, a, b)
    others = [v for v in nodes if v not in (a, b)]
    if others:
        c = data.draw(st.sampled_from(others))
        assert shortest_path(adj, a, b, skip_node=c) == \
            _nx_path(nx.restricted_view(g, [c], []), a, b)
    if g.adj[a]:
        e = (a, data.draw(st.sampled_from(list(g.adj[a]))))
        if data.draw(st.booleans()):
            e = e[::-1]
        assert shortest_path(adj, a, b, skip_edge=e) == \
            _nx_path(nx.restricted_view(g, [], [e]), a, b)


def test_no_path_is_none_and_a_node_to_itself_is_itself():
    """Disconnected ends give None; source equal to target gives the one-node path."""
    adj = {"a": ("b",), "b": ("a",), "c": ()}
    assert shortest_path(adj, "a", "c") is None
    assert shortest_path(adj, "a", "b", skip_edge=("b", "a")) is None
    assert shortest_path(adj, "c", "c") == ["c"]


@settings(max_examples=300, deadline=None)
@given(graphs(), st.data())
def test_an_edge_change_away_from_the_scanned_nodes_changes_no_path(g, data):
    """Adding or removing an edge with neither end among the nodes a search scanned (with
    or without a node or edge hidden) leaves its answer the same; the edges of the path
    found each have an end among them."""
    nodes = list(g)
    a, b = data.draw(st.sampled_from(nodes)), data.draw(st.sampled_from(nodes))
    kw = {}
    others = [v for v in nodes if v not in (a, b)]
    if others and data.draw(st.booleans()):
        kw["skip_node"] = data.draw(st.sampled_from(others))
    elif g.adj[a] and data.draw(st.booleans()):
        kw["skip_edge"] = (a, data.draw(st.sampled_from(list(g.adj[a]))))
    adj = {v: tuple(g.adj[v]) for v in g}
    scanned: set[str] = set()
    path = shortest_path(adj, a, b, scanned=scanned, **kw)
    for u, v in zip(path or [], (path or [])[1:]):
        assert u in scanned or v in scanned
    away = [(u, v) for i, u in enumerate(nodes) for v in nodes[i + 1:]
            if u not in scanned and v not in scanned]
    if not away:
        return
    u, v = data.draw(st.sampled_from(away))
    adj2 = dict(adj)          # only u's and v's neighbours change, the others keep their order
    for x, y in ((u, v), (v, u)):
        adj2[x] = tuple(w for w in adj[x] if w != y) if g.has_edge(u, v) else adj[x] + (y,)
    assert shortest_path(adj2, a, b, **kw) == path
