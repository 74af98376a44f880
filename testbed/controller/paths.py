"""Shortest paths for the fabric, on a plain adjacency mapping.

``shortest_path`` is a breadth-first search from both ends at once, expanding the smaller
fringe level by level (ties: the source's side) and scanning neighbours in the mapping's
order, so it returns exactly the path ``networkx.shortest_path`` (unweighted: its
bidirectional search) gives on a graph whose adjacency has that order, and on
``networkx.restricted_view`` of it for the node and edge it can skip. It exists because
the views and dispatch layers of networkx cost about ten times the search itself, and the
fabric searches a few thousand times per link event at k=8 (bench/controller.py).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence


def shortest_path(adj: Mapping[str, Sequence[str]], source: str, target: str, *,
                  skip_node: str | None = None,
                  skip_edge: tuple[str, str] | None = None,
                  scanned: set[str] | None = None) -> list[str] | None:
    """A shortest path ``[source, ..., target]`` (hop count) in the undirected graph
    ``adj`` (node -> neighbours, each edge listed at both ends), avoiding node
    ``skip_node`` and edge ``skip_edge`` (either direction); None when there is none.
    ``source`` and ``target`` must be nodes of ``adj`` and not ``skip_node``.

    ``scanned``, if given, receives every node whose neighbours the search looked at: the
    answer depends on no other entry of ``adj``, so it stays the same after a change of
    edges none of whose ends is in ``scanned``. Every edge of the path returned has an end
    in it, and when there is no path, so has every edge leaving the part searched."""
    if source == target:
        return [source]
    hidden = set() if skip_edge is None else {skip_edge, skip_edge[::-1]}
    pred: dict[str, str | None] = {source: None}
    succ: dict[str, str | None] = {target: None}
    fwd, rev = [source], [target]
    meet = None
    while fwd and rev and meet is None:
        forward = len(fwd) <= len(rev)
        level, seen, other = (fwd, pred, succ) if forward else (rev, succ, pred)
        nxt: list[str] = []
        for v in level:
            if scanned is not None:
                scanned.add(v)
            for w in adj[v]:
                if w == skip_node or (hidden and (v, w) in hidden):
                    continue
                if w not in seen:
                    seen[w] = v
                    nxt.append(w)
                if w in other:
                    meet = w
                    break
            if meet is not None:
                break
        if forward:
            fwd = nxt
        else:
            rev = nxt
    if meet is None:
        return None
    path: list[str] = []
    w: str | None = meet
    while w is not None:
        path.append(w)
        w = pred[w]
    path.reverse()
    w = succ[path[-1]]
    while w is not None:
        path.append(w)
        w = succ[w]
    return path
