"""The flow-level (fluid) model of the simulated NFVI: pure, no SimPy, every call takes ``now``.

What it holds: the data plane (switch links up or down, the forwarding graphs *installed*
with the switch path of every (segment, source, destination) pair, fast-failover detours),
the controller's view (``fabric``, a ``testbed.controller.logic.Fabric``: the controller's
own path logic, imported, not copied), VNF instances (CPU quota, per-packet cost, alive,
hung) and traffic streams (load generators and probes: a rate over one or more UDP flows).

The state is piecewise constant: ``update(now)`` moves the model's time to ``now``
(``advance``) and recomputes the rates (``recompute``); each instance and stream integrates
its own counters lazily, over the time since it last did, at the rates in force, whenever
its rates change or its counters are read (``settle``). Callers update after each change (a
load command, a fault, an instance or a graph change), so the work is per event, never per
packet, and reading one instance's counters costs O(1). Formulas (see
``docs/simulated-nfvi.md``):

- a flow with source port ``p`` visits, at a hop of n instances, the instance
  ``logic.split_instance(p, n)`` (the controller's L4 source-port split), or the first one
  where the controller would use a select group (the hash of one address pair);
- an instance's service rate is ``mu = vcpu / c`` packets/s with ``c = (base_cost_us(program)
  + cost_us) * 1e-6`` s of CPU per packet; offered ``lam`` packets/s, it forwards
  ``min(lam, mu)`` (fluid: the excess is dropped at its queue), uses ``min(vcpu, lam * c)``
  cores, and holds a packet ``min(K / mu, 1 / (mu - lam))`` s (M/M/1 sojourn, capped by a
  full queue of K packets; ``K / mu`` at or over capacity);
- a link of ``bw_mbit`` carries ``bw * 1e6 / (8 * packet_bytes)`` packets/s per direction;
  over it every flow on it is scaled by ``capacity / offered``;
- losses compose along the path and the offered loads are iterated to a fixed point;
- one-way latency = propagation (``delay_ms`` of every link crossed, access links included)
  + ``switch_latency_us`` per switch + every instance's sojourn.
"""
from __future__ import annotations

import contextlib
import ipaddress
import math
from dataclasses import dataclass, field

import networkx as nx

from testbed.controller.logic import COOKIE_SHIFT, Fabric, split_instance
from testbed.controller.specs import Attachment, ForwardingGraphSpec, Link
from testbed.errors import ForwardingGraphError, TestbedError
from testbed.nfvi.simulated.calibration import Calibration

INF = float("inf")
FIRST_PORT = 1          # port numbers per switch: links first, then endpoints, then instances


@dataclass
class Instance:
    """A VNF instance: where it runs, its CPU quota (cores) and cost per packet (s)."""

    iid: str
    node: str
    switch: str
    program: str
    vcpu: float
    cost_s: float
    deny_ports: frozenset = frozenset()   # UDP destination ports a firewall drops
    alive: bool = True
    hung: bool = False
    # cumulative counters, integrated by ``settle`` up to ``t_acc``
    cpu_seconds: float = 0.0
    packets: float = 0.0
    t_acc: float = 0.0
    # rates in force since the last update
    offered_pps: float = 0.0
    forwarded_pps: float = 0.0
    cpu_cores: float = 0.0
    sojourn_s: float = 0.0

    def __setattr__(self, name, value) -> None:
        # a change of alive or hung is an event the model must see (``FlowModel.recompute``
        # updates what such an instance touches): the model's set of changed instances
        if name in ("alive", "hung"):
            touched = self.__dict__.get("_touched")
            if touched is not None:
                touched.add(self.iid)
        object.__setattr__(self, name, value)

    def serving(self) -> bool:
        """Whether the instance forwards (alive and not hung)."""
        return self.alive and not self.hung

    def settle(self, now: float) -> None:
        """Integrate the counters up to ``now`` at the rates in force."""
        d = self.__dict__      # counters are no event: set past __setattr__ (it is hot)
        dt = now - d["t_acc"]
        if dt > 0:
            d["cpu_seconds"] += d["cpu_cores"] * dt
            d["packets"] += d["forwarded_pps"] * dt
            d["t_acc"] = now

    def service_rate(self) -> float:
        """``mu`` in packets/s: the quota over the cost per packet (inf at cost 0)."""
        return self.vcpu / self.cost_s if self.cost_s > 0 else INF


@dataclass
class LoadAccount:
    """A load generator's counts per send-time interval ``floor(t / interval_s)``: packets
    sent and received (floats, rounded when read), commanded-rate and latency integrals."""

    interval_s: float
    first: int
    sent: dict[int, float] = field(default_factory=dict)
    received: dict[int, float] = field(default_factory=dict)
    rate_dt: dict[int, float] = field(default_factory=dict)
    elapsed: dict[int, float] = field(default_factory=dict)
    latency_w: dict[int, float] = field(default_factory=dict)

    def add(self, t0: float, t1: float, rate: float, frac: float, latency_s: float) -> None:
        """Account [t0, t1) at ``rate`` packets/s, ``frac`` of them delivered."""
        t = t0
        while t < t1:
            i = math.floor(t / self.interval_s + 1e-9)
            end = min(t1, (i + 1) * self.interval_s)
            dt = end - t
            if dt <= 0:
                break
            n = rate * dt
            self.sent[i] = self.sent.get(i, 0.0) + n
            self.received[i] = self.received.get(i, 0.0) + n * frac
            self.rate_dt[i] = self.rate_dt.get(i, 0.0) + rate * dt
            self.elapsed[i] = self.elapsed.get(i, 0.0) + dt
            self.latency_w[i] = self.latency_w.get(i, 0.0) + n * frac * latency_s
            t = end


@dataclass
class Stream:
    """Traffic from endpoint ``src`` to ``dst``: ``rate`` packets/s split evenly over one
    UDP flow per source port in ``sports``, to destination port ``dport``."""

    key: str
    src: str
    dst: str
    sports: tuple[int, ...]
    dport: int
    rate: float = 0.0
    frac: float = 0.0                     # delivered fraction, now
    latency_s: float = 0.0                # mean one-way latency of what is delivered, now
    account: LoadAccount | None = None    # load generators
    history: list[tuple[float, float, float]] | None = None   # probes: (t, frac, latency_s)
    t_acc: float = 0.0                    # the account holds everything before this

    def __setattr__(self, name, value) -> None:
        # a rate change is an event the model must see (its set of changed streams)
        if name == "rate":
            touched = self.__dict__.get("_touched")
            if touched is not None:
                touched.add(self.key)
        object.__setattr__(self, name, value)

    def settle(self, now: float) -> None:
        """Account [t_acc, now) at the rate and delivery in force (load generators)."""
        if now > self.t_acc:
            if self.account is not None:
                self.account.add(self.t_acc, now, self.rate, self.frac, self.latency_s)
            self.t_acc = now


@dataclass
class InstalledGraph:
    """A forwarding graph as the switches hold it: its spec, every pair's switch path and
    the graph id its flows' cookies carry."""

    spec: ForwardingGraphSpec
    pairs: dict[tuple[int, str, str], list[str]]
    gid: int


def _ip_matches(value, ip: str) -> bool:
    if isinstance(value, tuple):
        net = ipaddress.IPv4Network(f"{value[0]}/{value[1]}")
        return ipaddress.IPv4Address(ip) in net
    return value == ip


class FlowModel:
    """The fluid model of one simulated data center (see the module docstring)."""

    def __init__(self, topology, cal: Calibration):
        self.topology, self.cal = topology, cal
        self.t = 0.0
        self.switches = {s.name: s.dpid for s in topology.switches()}
        self._next_port: dict[str, int] = {s: FIRST_PORT for s in self.switches}
        links: list[Link] = []
        self.link_ports: dict[frozenset, tuple[tuple[str, int], tuple[str, int]]] = {}
        self.link_spec: dict[frozenset, object] = {}
        eps = {e.name for e in topology.endpoints()}
        for spec in topology.links():
            key = frozenset((spec.a, spec.b))
            self.link_spec[key] = spec
            if spec.a in eps or spec.b in eps:
                continue
            pa, pb = self._port(spec.a), self._port(spec.b)
            links.append(Link(spec.a, pa, spec.b, pb))
            self.link_ports[key] = ((spec.a, pa), (spec.b, pb))
        self.endpoints = {e.name: e for e in topology.endpoints()}
        atts = [Attachment(e.name, e.switch, self._port(e.switch), e.mac, e.ip)
                for e in topology.endpoints()]
        self.fabric = Fabric(self.switches, links, atts)
        self.attach_switch = {a.name: a.switch for a in atts}
        self.ips = {e.name: e.ip for e in topology.endpoints()}
        self.down: set[frozenset] = set()                 # data plane: links down now
        self.installed: dict[str, InstalledGraph] = {}
        self.detours: dict[tuple[str, tuple[int, str, str]], list[str]] = {}
        self._detoured: set[tuple] = set()     # detours taken since their graph's install
        self._protected: set[str] = set()      # installed graphs with protection
        self._gid_name: dict[int, str] = {}    # installed graphs by the cookie's graph id
        self.instances: dict[str, Instance] = {}
        self.streams: dict[str, Stream] = {}
        # a stream's cached route depends on its ingress's installed graphs, the graph it
        # is classified to (spec, pairs, detours), the instances it names and the links of
        # the paths looked at: each such dependency invalidates exactly the routes using it
        self._routes: dict[str, list[tuple[float, tuple, float]]] = {}
        self._route_insts: dict[str, frozenset[str]] = {}   # the instances a route visits
        self._route_deps: dict[str, set[tuple]] = {}
        self._dep_streams: dict[tuple, set[str]] = {}
        self._by_ingress: dict[str, set[str]] = {}        # endpoint -> installed graphs
        # what changed since the last recomputation (see ``recompute``)
        self._dirty_streams: set[str] = set()
        self._dirty_insts: set[str] = set()              # also filled by ``Instance``
        # the last solution's coupling: which instances each stream's flows visit
        self._solved = False
        self._stream_insts: dict[str, set[str]] = {}
        self._inst_streams: dict[str, set[str]] = {}
        self._stream_links: dict[str, dict[tuple, float]] = {}
        self._link_total: dict[tuple, float] = {}
        self._saturated = False
        self.partial_updates = 0      # changes handled without a full recomputation
        pkt_bits = 8.0 * cal.packet_bytes
        self.link_capacity = {k: (s.bw_mbit * 1e6 / pkt_bits if s.bw_mbit else INF)
                              for k, s in self.link_spec.items()}
        # the same by a flow's link element ("link", u, v), filled as elements are met
        self._elem_capacity: dict[tuple, float] = {}

    def _port(self, switch: str) -> int:
        p = self._next_port[switch]
        self._next_port[switch] = p + 1
        return p

    # ---- time ------------------------------------------------------------------------------
    def advance(self, now: float) -> None:
        """Move the model's time to ``now`` (the rates in force until then stay; counters
        are integrated lazily, see ``settle``)."""
        if now < self.t:
            raise TestbedError(f"simulated NFVI: time went back from {self.t} to {now}")
        self.t = now

    def update(self, now: float) -> None:
        """Advance to ``now``, then recompute the rates for the current state."""
        self.advance(now)
        self.recompute()

    # ---- attachments and instances ------------------------------------------------------------
    def add_instance(self, inst: Instance) -> None:
        """Attach a new instance to its switch (a new port in the controller's fabric)."""
        self._invalidate(("inst", inst.iid))
        self._dirty_insts.add(inst.iid)
        inst._touched = self._dirty_insts
        inst.t_acc = self.t
        port = self._port(inst.switch)
        self.fabric.add_attachment(Attachment(inst.iid, inst.switch, port))
        self.attach_switch[inst.iid] = inst.switch
        self.instances[inst.iid] = inst

    def remove_instance(self, iid: str) -> None:
        """Forget an instance; its fabric attachment goes too unless a graph still names
        it (the controller refuses that; the graph's next version drops it)."""
        self._invalidate(("inst", iid))
        self._dirty_insts.add(iid)
        gone = self.instances.pop(iid, None)
        if gone is not None:
            gone._touched = None
        with contextlib.suppress(ForwardingGraphError):    # unknown, or a graph names it
            self.fabric.remove_attachment(iid)

    # ---- links --------------------------------------------------------------------------------
    def link_key(self, a: str, b: str) -> frozenset:
        """The key of switch link a-b; ``TestbedError`` if there is no such link."""
        key = frozenset((a, b))
        if key not in self.link_ports:
            raise TestbedError(f"link {a}-{b}: no such link between switches")
        return key

    def set_link(self, a: str, b: str, up: bool) -> None:
        """The data plane: link a-b goes down or up now (the controller learns it later)."""
        key = self.link_key(a, b)
        self._invalidate(("link", key))
        if up:
            self.down.discard(key)
        else:
            self.down.add(key)

    def controller_sees(self, a: str, b: str, up: bool) -> set[str]:
        """The controller gets the port-status events of both ends (restoration). Returns
        the installed graphs whose flows it changed (by the flows' cookies): only their
        paths can differ from what is installed."""
        changed: set[str] = set()
        for sw, port in self.link_ports[self.link_key(a, b)]:
            ch = self.fabric.port_status(self.switches[sw], port, up)
            for f in (*ch.flow_adds, *ch.flow_dels):
                name = self._gid_name.get(f.cookie >> COOKIE_SHIFT)
                if name is not None:
                    changed.add(name)
        return changed

    def path_up(self, path: list[str]) -> bool:
        """Whether every link of a switch path is up in the data plane."""
        return all(frozenset(path[j:j + 2]) not in self.down for j in range(len(path) - 1))

    def detour(self, path: list[str]) -> list[str] | None:
        """A fast-failover detour of ``path``: at the switch before its first down link, the
        shortest path of up links to the path's last switch that avoids the next switch
        (unless that is the last one), else one that avoids the link only; None if there is
        none. The fabric's backup buckets follow the same rule (``logic.Fabric``), computed
        when the graph was installed; the model takes the links up now."""
        for j in range(len(path) - 1):
            if frozenset(path[j:j + 2]) not in self.down:
                continue
            g = nx.Graph()
            g.add_nodes_from(sorted(self.switches))
            g.add_edges_from(sorted(tuple(sorted(k)) for k in self.link_ports
                                    if k not in self.down))
            views = []
            if path[j + 1] != path[-1]:
                views.append(nx.restricted_view(g, [path[j + 1]], []))
            views.append(g)
            for view in views:
                try:
                    return path[:j] + nx.shortest_path(view, path[j], path[-1])
                except nx.NetworkXNoPath:
                    continue
            return None
        return list(path)

    # ---- graphs -------------------------------------------------------------------------------
    def install(self, name: str, spec: ForwardingGraphSpec | None = None) -> None:
        """The switches now hold the controller's current flows for graph ``name``
        (``spec``: its spec in the controller, ``fabric.graphs()[name]``, if the caller
        has it)."""
        spec = self.fabric.graphs()[name] if spec is None else spec
        pairs = {(p["segment"], p["from"], p["to"]): p["path"]
                 for p in self.fabric.graph_pairs(name)}
        old = self.installed.get(name)
        if old is not None and old.spec == spec and old.pairs == pairs and \
                not any(k[0] == name for k in self._detoured):
            return                          # the switches hold these flows already
        self._graph_changed(name)
        gid = self.fabric.graph_cookie(name) >> COOKIE_SHIFT
        self.installed[name] = InstalledGraph(spec, pairs, gid)
        self._gid_name[gid] = name
        (self._protected.add if spec.protection else self._protected.discard)(name)
        self._by_ingress.setdefault(spec.hops[0], set()).add(name)
        self._graph_changed(name)
        for k in [k for k in self.detours if k[0] == name]:
            del self.detours[k]
        self._detoured = {k for k in self._detoured if k[0] != name}

    def uninstall(self, name: str) -> None:
        """The switches no longer hold graph ``name``."""
        self._graph_changed(name)
        g = self.installed.pop(name, None)
        if g is not None:
            self._by_ingress.get(g.spec.hops[0], set()).discard(name)
            self._gid_name.pop(g.gid, None)
        self._protected.discard(name)
        for k in [k for k in self.detours if k[0] == name]:
            del self.detours[k]
        self._detoured = {k for k in self._detoured if k[0] != name}

    def _graph_changed(self, name: str) -> None:
        """Routes through graph ``name``, and the classification at its ingress, change."""
        self._invalidate(("graph", name))
        g = self.installed.get(name)
        if g is not None:
            self._invalidate(("ep", g.spec.hops[0]))

    def switch_over(self) -> None:
        """Fast-failover groups of protected graphs move pairs whose primary path is down
        onto a detour (where one exists)."""
        for name in sorted(self._protected):
            g = self.installed[name]
            for pk, path in sorted(g.pairs.items()):
                if path and not self.path_up(path) and (name, pk) not in self.detours:
                    d = self.detour(path)
                    if d is not None:
                        self.detours[(name, pk)] = d
                        self._detoured.add((name, pk))
                        self._invalidate(("graph", name))

    # ---- streams ------------------------------------------------------------------------------
    def add_stream(self, st: Stream) -> None:
        """Start a traffic stream; ``TestbedError`` naming an unknown endpoint."""
        if st.src not in self.endpoints or st.dst not in self.endpoints:
            bad = st.src if st.src not in self.endpoints else st.dst
            raise TestbedError(f"no endpoint {bad!r}; endpoints: "
                               f"{', '.join(sorted(self.endpoints))}")
        st.t_acc = self.t
        self.streams[st.key] = st
        self._dirty_streams.add(st.key)
        st._touched = self._dirty_streams

    def remove_stream(self, key: str) -> None:
        """Stop a traffic stream (unknown keys are ignored)."""
        st = self.streams.pop(key, None)
        if st is None:
            return
        st._touched = None
        self._forget_route(key)
        for iid in self._stream_insts.pop(key, set()):
            self._inst_streams.get(iid, set()).discard(key)
            self._dirty_insts.add(iid)           # it loses this stream's load
        for e, r in self._stream_links.pop(key, {}).items():
            self._link_total[e] -= r
        self._dirty_streams.discard(key)

    def set_rate(self, key: str, rate: float, now: float) -> None:
        """A stream's rate changes at ``now``; the rates are recomputed (what it touches)."""
        st = self.streams[key]
        self.advance(now)
        st.settle(now)
        st.rate = float(rate)          # marks it changed
        self.recompute()

    # ---- route dependencies ---------------------------------------------------------------
    def _invalidate(self, dep: tuple) -> None:
        """Something a route may depend on changed: the routes that do are made again."""
        for key in self._dep_streams.pop(dep, ()):
            self._forget_route(key)
            self._dirty_streams.add(key)

    def _forget_route(self, key: str) -> None:
        self._routes.pop(key, None)
        self._route_insts.pop(key, None)
        for dep in self._route_deps.pop(key, ()):
            users = self._dep_streams.get(dep)
            if users is not None:
                users.discard(key)
                if not users:
                    del self._dep_streams[dep]

    def classify(self, st: Stream, sport: int) -> InstalledGraph | None:
        """The installed graph whose classifier takes this flow at its ingress (highest
        priority: the fabric refuses two overlapping classifiers at one priority), as the
        switches' flow tables would."""
        best, rank = None, None
        for name in sorted(self._by_ingress.get(st.src, ())):
            g = self.installed[name]
            spec = g.spec
            if spec.hops[0] != st.src:
                continue
            m = dict(spec.match)
            if m.get("ip_proto", 17) != 17 or "tcp_src" in m or "tcp_dst" in m:
                continue
            if "ipv4_src" in m and not _ip_matches(m["ipv4_src"], self.ips[st.src]):
                continue
            if "ipv4_dst" in m and not _ip_matches(m["ipv4_dst"], self.ips[st.dst]):
                continue
            if m.get("udp_dst", st.dport) != st.dport or m.get("udp_src", sport) != sport:
                continue
            r = spec.priority
            if rank is None or r > rank:
                best, rank = g, r
        return best

    def _route(self, st: Stream, sport: int, deps: set | None = None):
        """The elements one flow crosses, in order: ("link", u, v) and ("inst", iid), or None
        when it is dropped on the way (no graph, no path, a path down, an unknown hop).
        ``deps`` receives what the answer depends on (see ``_invalidate``)."""
        deps = set() if deps is None else deps
        deps.add(("ep", st.src))
        g = self.classify(st, sport)
        if g is None or g.spec.hops[-1] != st.dst:
            return None
        spec = g.spec
        deps.add(("graph", spec.name))
        split = "udp_src" if dict(spec.match).get("ip_proto") == 17 else None
        chosen = [spec.hops[0]]
        for k in range(1, len(spec.hops) - 1):
            names = spec.instances(k)
            idx = split_instance(sport, len(names)) if split else 0
            chosen.append(names[idx])
        chosen.append(spec.hops[-1])
        elems: list[tuple] = [("link", st.src, self.endpoints[st.src].switch)]
        for i in range(len(chosen) - 1):
            pk = (i, chosen[i], chosen[i + 1])
            path = self.detours.get((spec.name, pk)) or g.pairs.get(pk)
            if path:
                deps.update(("link", frozenset(path[j:j + 2])) for j in range(len(path) - 1))
            if not path or not self.path_up(path):
                return None
            elems += [("switch", s) for s in path]
            elems += [("link", path[j], path[j + 1]) for j in range(len(path) - 1)]
            nxt = chosen[i + 1]
            if i + 1 < len(chosen) - 1:
                deps.add(("inst", nxt))
                if nxt not in self.instances:
                    return None
                elems.append(("inst", nxt))
        elems.append(("link", self.endpoints[st.dst].switch, st.dst))
        return elems

    # ---- the fixed point ------------------------------------------------------------------------
    def recompute(self) -> None:
        """Rates, losses and latencies for the current state (see the module docstring).

        Only what changed since the last recomputation is solved again: the streams whose
        routes or rates changed, those visiting an instance that came, went or changed
        (alive, hung), and every stream coupled with those through shared instances. A
        saturated link couples streams too: while one is (or becomes) saturated, everything
        is solved again. Either way the result is the full solution's
        (``tests/unit/test_sim_model.py``)."""
        if not self._solved or self._saturated or not self._recompute_changed():
            self.recompute_all()

    def recompute_all(self) -> None:
        """Rates, losses and latencies of every stream and instance."""
        for inst in self.instances.values():
            inst.settle(self.t)
        for st in self.streams.values():
            st.settle(self.t)
        keys = sorted(self.streams)
        flows = self._flows_for(keys)
        factor, offered = self._solve(flows)
        self._apply(flows, factor, offered, sorted(self.instances), keys)
        self._index(keys, flows, factor)
        self._dirty_streams.clear()
        self._dirty_insts.clear()
        self._solved = True

    def _flows_for(self, keys: list[str]) -> list[tuple[Stream, float, tuple, float]]:
        """(stream, rate, elements, static latency) of every flow of the streams, in order."""
        flows = []
        for key in keys:
            st = self.streams[key]
            if st.rate > 0:
                flows += [(st, st.rate * share, elems, lat0)
                          for share, elems, lat0 in self._flows_of(st)]
        return flows

    def _solve(self, flows) -> tuple[dict, dict]:
        """The fixed point of offered loads and passed fractions over the flows' elements."""
        factor: dict[tuple, float] = {}
        offered: dict[tuple, float] = {}
        instances, passed = self.instances, self._factor
        for _ in range(30):
            offered = {}
            load, fget = offered.get, factor.get
            for st, rate, elems, _lat in flows:
                r = rate
                for e in elems:
                    offered[e] = load(e, 0.0) + r
                    r *= fget(e, 1.0)
                    if e[0] == "inst" and st.dport in instances[e[1]].deny_ports:
                        r = 0.0
            new = {e: passed(e, lam) for e, lam in offered.items()}
            if all(abs(f - fget(e, 1.0)) < 1e-12 for e, f in new.items()):
                factor = new
                break
            factor = new
        return factor, offered

    def _apply(self, flows, factor: dict, offered: dict, iids: list[str],
               keys: list[str]) -> None:
        """Set the instances' and streams' rates from a solution (instances and streams
        settled to now before)."""
        for iid in iids:
            inst = self.instances[iid]
            lam = offered.get(("inst", iid), 0.0) if inst.serving() else 0.0
            mu = inst.service_rate()
            d = inst.__dict__  # rates are no event: set past Instance.__setattr__ (hot)
            d["offered_pps"] = lam
            d["cpu_cores"] = min(inst.vcpu, lam * inst.cost_s)
            d["forwarded_pps"] = min(lam, mu)
            d["sojourn_s"] = self._sojourn(lam, mu)
        # per stream: offered, delivered, delivered x latency (a dropped flow delivers 0)
        sums = {k: [self.streams[k].rate, 0.0, 0.0] for k in keys if self.streams[k].rate > 0}
        for st, rate, elems, lat in flows:
            acc = sums[st.key]
            r = rate
            for e in elems:
                r *= factor.get(e, 1.0)
                if e[0] == "inst":
                    inst = self.instances[e[1]]
                    lat += inst.sojourn_s
                    if st.dport in inst.deny_ports:
                        inst.forwarded_pps -= r
                        r = 0.0
            acc[1] += r
            acc[2] += r * lat
        for key in keys:
            st = self.streams[key]
            total, got, lat_w = sums.get(key, (0.0, 0.0, 0.0))
            if total > 0:
                st.frac = min(1.0, got / total)
                st.latency_s = lat_w / got if got > 0 else 0.0
            elif not st.sports or st.rate <= 0:
                # no traffic now: what a packet would meet (probes keep their history)
                st.frac, st.latency_s = self.would_deliver(st)
            if st.history is not None:
                last = st.history[-1] if st.history else None
                cur = (self.t, round(st.frac, 12), round(st.latency_s, 12))
                if last is None or last[1:] != cur[1:]:
                    st.history.append(cur)

    # ---- incremental updates ---------------------------------------------------------------
    def _link_loads(self, flows, factor: dict) -> dict[str, dict[tuple, float]]:
        """Per stream, what it offers to each link it crosses."""
        out: dict[str, dict[tuple, float]] = {}
        for st, rate, elems, _lat in flows:
            mine = out.setdefault(st.key, {})
            r = rate
            for e in elems:
                if e[0] == "link":
                    mine[e] = mine.get(e, 0.0) + r
                r *= factor.get(e, 1.0)
                if e[0] == "inst" and st.dport in self.instances[e[1]].deny_ports:
                    r = 0.0
        return out

    def _insts_of(self, key: str) -> frozenset[str]:
        """The instances the stream's flows visit (whatever its rate), kept with its
        route."""
        if key not in self._route_insts:
            self._route_insts[key] = frozenset(
                e[1] for _share, elems, _lat in self._flows_of(self.streams[key])
                for e in elems if e[0] == "inst")
        return self._route_insts[key]

    def _index(self, keys: list[str], flows, factor: dict) -> None:
        """After a full recomputation: which instances each stream visits, what each offers
        to links, and whether a link is saturated."""
        self._stream_insts = {k: self._insts_of(k) for k in keys}
        self._inst_streams = {}
        for k in keys:
            for iid in self._stream_insts[k]:
                self._inst_streams.setdefault(iid, set()).add(k)
        self._stream_links = self._link_loads(flows, factor)
        self._link_total = {}
        for loads in self._stream_links.values():
            for e, r in loads.items():
                self._link_total[e] = self._link_total.get(e, 0.0) + r
        self._saturated = any(factor.get(e, 1.0) < 1.0 for e in self._link_total)

    def _recompute_changed(self) -> bool:
        """Solve again only what changed and what is coupled with it through instances
        (see ``recompute``); False (nothing done) when a link would be saturated."""
        affected = {k for k in self._dirty_streams if k in self.streams}
        iids = set(self._dirty_insts)
        for iid in self._dirty_insts:
            affected |= self._inst_streams.get(iid, set())
        new_insts: dict[str, set[str]] = {}
        queue = sorted(affected)
        while queue:
            k = queue.pop()
            new_insts[k] = mine = self._insts_of(k)
            had = self._stream_insts.get(k)
            for iid in mine if had is None or had is mine else mine | had:
                iids.add(iid)
                for k2 in self._inst_streams.get(iid, ()):
                    if k2 not in affected:
                        affected.add(k2)
                        queue.append(k2)
        keys = sorted(affected)
        flows = self._flows_for(keys)
        factor, offered = self._solve(flows)
        loads = self._link_loads(flows, factor)
        for k in keys:
            for e, r in self._stream_links.get(k, {}).items():
                self._link_total[e] -= r
            for e, r in loads.get(k, {}).items():
                self._link_total[e] = self._link_total.get(e, 0.0) + r
            self._stream_links[k] = loads.get(k, {})
        if any(self._factor(e, self._link_total[e]) < 1.0 for k in keys
               for e in self._stream_links[k]):
            return False
        live = sorted(i for i in iids if i in self.instances)
        for iid in live:
            self.instances[iid].settle(self.t)
        for k in keys:
            self.streams[k].settle(self.t)
        self._apply(flows, factor, offered, live, keys)
        for k in keys:
            old = self._stream_insts.get(k)
            if old is new_insts[k]:
                continue            # the same route's instances: the index holds them
            for iid in old or ():
                self._inst_streams.get(iid, set()).discard(k)
            self._stream_insts[k] = new_insts[k]
            for iid in new_insts[k]:
                self._inst_streams.setdefault(iid, set()).add(k)
        for iid in iids - set(live):
            self._inst_streams.pop(iid, None)
        self._dirty_streams.clear()
        self._dirty_insts.clear()
        self.partial_updates += 1
        return True

    def _flows_of(self, st: Stream) -> list[tuple[float, tuple, float]]:
        """The stream's flows grouped by route: (share of its rate, the links and instances
        crossed, the route's latency without instance sojourns), from the cache while the
        routing state is unchanged. A dropped flow has no elements and is left out."""
        cached = self._routes.get(st.key)
        if cached is not None:
            return cached
        self._forget_route(st.key)
        deps: set[tuple] = set()
        groups: dict[tuple, int] = {}
        for p in st.sports:
            elems = self._route(st, p, deps)
            if elems:
                k = tuple(elems)
                groups[k] = groups.get(k, 0) + 1
        out = []
        for elems, n in groups.items():
            lat = sum(self.cal.switch_latency_us * 1e-6 if e[0] == "switch" else
                      self._delay_s(e[1], e[2]) for e in elems if e[0] != "inst")
            out.append((n / len(st.sports), tuple(e for e in elems if e[0] != "switch"), lat))
        self._routes[st.key] = out
        self._route_deps[st.key] = deps
        for dep in deps:
            self._dep_streams.setdefault(dep, set()).add(st.key)
        return out

    def would_deliver(self, st: Stream) -> tuple[float, float]:
        """(1, latency s) if a packet of the stream's first flow would arrive now, else (0, 0)
        (the instances' queues as the current load leaves them)."""
        elems = self._route(st, st.sports[0]) if st.sports else None
        if not elems:
            return 0.0, 0.0
        lat = 0.0
        for e in elems:
            if e[0] == "switch":
                lat += self.cal.switch_latency_us * 1e-6
            elif e[0] == "link":
                lat += self._delay_s(e[1], e[2])
            elif not self.instances[e[1]].serving() or \
                    st.dport in self.instances[e[1]].deny_ports:
                return 0.0, 0.0
        return 1.0, lat

    def _delay_s(self, u: str, v: str) -> float:
        spec = self.link_spec.get(frozenset((u, v)))
        return (spec.delay_ms / 1000.0) if spec is not None else 0.0

    def _factor(self, e: tuple, lam: float) -> float:
        """The fraction of what is offered to element ``e`` that it passes on."""
        if lam <= 0:
            return 1.0
        if e[0] == "inst":
            inst = self.instances[e[1]]
            if not inst.alive or inst.hung:        # not serving()
                return 0.0
            return min(1.0, inst.service_rate() / lam)
        cap = self._elem_capacity.get(e)
        if cap is None:
            cap = self._elem_capacity[e] = self.link_capacity.get(frozenset((e[1], e[2])), INF)
        # min(1.0, cap / lam), without dividing when it is 1
        return 1.0 if cap >= lam else cap / lam

    def _sojourn(self, lam: float, mu: float) -> float:
        if mu == INF:
            return 0.0
        full = self.cal.vnf_queue_packets / mu
        if lam >= mu:
            return full
        return min(full, 1.0 / (mu - lam))

    # ---- views -------------------------------------------------------------------------------------
    def instance_counters(self, iid: str, now: float) -> tuple[float, float]:
        """(cpu_seconds, packets) of an instance at ``now`` (integrated, not recomputed)."""
        self.advance(now)
        inst = self.instances[iid]
        inst.settle(now)
        return inst.cpu_seconds, inst.packets
