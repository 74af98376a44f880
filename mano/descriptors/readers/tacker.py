"""Tacker's legacy templates (``tosca_simple_profile_for_nfv_1_0_0``): VNFDs, NSDs and
VNFFGDs (descriptors/README.md, "Tacker legacy").

- VNFD: one ``tosca.nodes.nfv.VDU.Tacker`` (``flavor`` by OpenStack name, or
  ``capabilities.nfv_compute``; ``image``), ``CP.Tacker`` bound to it, the policies
  ``tosca.policies.tacker.Scaling`` and ``tosca.policies.tacker.Placement``
  (anti-affinity). Its id is ``metadata.template_name`` or the file name, as Tacker
  names a VNFD at onboarding.
- NSD: the imported VNFDs (``imports`` name onboarded VNFDs; their files are read from
  the NSD's folder, ``<name>.yaml``) and the forwarding paths, as in a VNFFGD.
- VNFFGD (and the VNFFG groups of an NSD): each ``tosca.nodes.nfv.FP.Tacker*`` is a
  graph; its ``path`` (forwarders, in order) the chain, each ``policy.criteria`` entry of
  its ACL policy a classifier. A VNFFGD becomes an NSD whose constituents are the VNFDs it
  forwards through (onboarded before it).
"""
from __future__ import annotations

from pathlib import Path

from mano.descriptors._yaml import read_yaml
from mano.descriptors.readers.common import (
    Bundle,
    Node,
    Parameters,
    VnfParts,
    build_nsd,
    build_vnfd,
    classifier,
    port,
    prefix,
    protocol,
    size_mb,
    vnfd_id_for,
)
from mano.descriptors.readers.tosca import bind_inputs

VDU, CP, VL = "tosca.nodes.nfv.VDU.Tacker", "tosca.nodes.nfv.CP.Tacker", "tosca.nodes.nfv.VL"
FP_PREFIX = "tosca.nodes.nfv.FP"
# CP properties that ask nothing of the NFVI here (the one interface is the data interface)
CP_NEUTRAL = ("management", "order", "anti_spoofing_protection")
# OpenStack's default flavours: (vCPU, memory MiB, disk GB)
FLAVORS = {"m1.tiny": (1, 512, 1), "m1.small": (1, 2048, 20), "m1.medium": (2, 4096, 40),
           "m1.large": (4, 8192, 80), "m1.xlarge": (8, 16384, 160)}
ACL_KEYS = ("ip_proto", "ip_src_prefix", "ip_dst_prefix", "source_port_range",
            "destination_port_range", "eth_type")
ACL_NEUTRON = ("network_src_port_id", "network_dst_port_id", "network_id", "network_name")


def read(path: Path, data, params: Parameters | None = None) -> Bundle:
    """A Tacker legacy VNFD, NSD or VNFFGD; ``params`` give its inputs (as Tacker's
    ``--param-file``), checked by ``tosca.bind_inputs``."""
    top = Node(data, "", path.name)
    tt = top.need("topology_template")
    given = bind_inputs([tt], params)
    nodes = tt.need("node_templates").items()
    types = [n.get("type").text() or "" for _, n in nodes]
    if VDU in types:
        return Bundle("tacker", vnfds=[read_vnfd(top, path, given)])
    if top.get("imports").present:
        return read_nsd(top, path, given)
    if any(t.startswith(FP_PREFIX) for t in types):
        return Bundle("tacker", nsds=[read_vnffgd(top, path, given)])
    tt.get("node_templates").fail(f"neither a VDU ({VDU}) nor a forwarding path "
                                  f"({FP_PREFIX}.*): not a Tacker VNFD, NSD or VNFFGD")


def _unread(nodes: dict[str, Node], read: tuple[str, ...], notes: list[str],
            members: tuple[str, ...] = ()) -> None:
    """Warn of each node template a reader does not read (its type is none of ``read``,
    not a forwarding path, not one of ``members``): what it asks is not honoured."""
    for k, n in nodes.items():
        typ = n.get("type").text()
        if k in members or typ in read or (typ or "").startswith(FP_PREFIX):
            continue
        notes.append(n.warn(f"node type {typ!r} has no meaning here; ignored" if typ else
                            "no type: not a node template the testbed can read; ignored"))


def _inputs(tt: Node, given: dict | None) -> dict:
    """The inputs' values: their defaults, overridden by the parameters ``given``."""
    return {**{k: v.value["default"] for k, v in tt.get("inputs").items()
               if isinstance(v.value, dict) and "default" in v.value}, **(given or {})}


def _resolved(n: Node, inputs: dict) -> Node:
    """``n`` with ``{get_input: x}`` replaced by the input's value; refused without."""
    v = n.value
    if isinstance(v, dict) and set(v) == {"get_input"}:
        name = v["get_input"]
        if not isinstance(name, str) or name not in inputs:
            n.fail(f"input {name!r} has no default and no parameter gives it: give it in "
                   f"a parameter file (--param-file) or a default in "
                   f"topology_template.inputs")
        return Node(inputs[name], n.path, n.source)
    return n


def read_vnfd(top: Node, path: Path, given: dict | None = None):
    tt = top.get("topology_template")
    inputs = _inputs(tt, given)
    nodes = dict(tt.get("node_templates").items())
    notes: list[str] = []
    vdus = [(k, n) for k, n in nodes.items() if n.get("type").text() == VDU]
    if len(vdus) > 1:
        tt.get("node_templates").fail(
            f"{len(vdus)} VDUs ({', '.join(k for k, _ in vdus)}); the testbed runs one VDU "
            f"per VNF (required feature: multi-VDU VNFs)")
    name, vdu = vdus[0]
    props = vdu.get("properties")
    if props.get("vnfcs").present:
        props.get("vnfcs").fail("containerized VNFCs (Kubernetes) cannot run on this NFVI "
                                "(required feature missing): give the VDU a flavor or "
                                "capabilities.nfv_compute")
    comp = vdu.get("capabilities").get("nfv_compute").get("properties")
    for key, v in comp.items():
        if key not in ("num_cpus", "mem_size", "disk_size"):
            notes.append(v.warn("has no meaning on this NFVI (instances get a CPU quota "
                                "and a memory limit only); ignored"))
    if comp.present:
        vcpu = _resolved(comp.need("num_cpus"), inputs).integer(ge=1)
        mem = size_mb(_resolved(comp.need("mem_size"), inputs))
        disk = -(-(size_mb(_resolved(comp.get("disk_size"), inputs)) or 0) // 1024)
    else:
        fl = _resolved(props.need("flavor", "or capabilities.nfv_compute"), inputs)
        fname = fl.need_text()
        if fname not in FLAVORS:
            fl.fail(f"unknown flavor {fname!r}; known (OpenStack's defaults): "
                    f"{', '.join(FLAVORS)}, or give capabilities.nfv_compute")
        vcpu, mem, disk = FLAVORS[fname]
    for key in ("user_data", "user_data_format", "config", "mgmt_driver", "key_name",
                "availability_zone", "metadata", "monitoring_policy", "service_type"):
        if props.get(key).present:
            notes.append(props.get(key).warn("has no meaning on this NFVI; ignored"))
    image_node = _resolved(props.get("image"), inputs)
    cps = [k for k, n in nodes.items() if n.get("type").text() == CP and any(
        (r.get("virtualBinding").get("node").text() or r.get("virtualBinding").text())
        == name for r in n.get("requirements").elems() if isinstance(r.value, dict)
        and isinstance(r.value.get("virtualBinding"), (str, dict)))]
    for k, n in nodes.items():
        if n.get("type").text() == VL:
            notes.append(n.warn("virtual link: instances have one interface on the data "
                                "center network; ignored"))
        if k in cps:
            for key, v in n.get("properties").items():
                if key not in CP_NEUTRAL:
                    notes.append(v.warn("has no meaning on this NFVI (the instance's one "
                                        "interface gets its address from the NFVI); "
                                        "ignored"))
    _unread(nodes, (VDU, CP, VL), notes)
    initial, lo, hi, step, anti = 1, None, None, 1, False
    pols = tt.get("policies")
    entries = pols.items() if isinstance(pols.value, dict) else \
        [kv for p in pols.elems() for kv in p.items()]
    for pname, p in entries:
        typ = p.get("type").text() or ""
        pp = p.get("properties")
        if typ == "tosca.policies.tacker.Scaling":
            step = pp.get("increment").integer(1, ge=1)
            lo = pp.get("min_instances").integer(ge=0)
            hi = pp.get("max_instances").integer(ge=0)
            initial = pp.get("default_instances").integer(lo if lo is not None else 1, ge=0)
        elif typ == "tosca.policies.tacker.Placement":
            kind = pp.get("policy").text("")
            if kind in ("anti-affinity", "soft-anti-affinity"):
                anti = True
            else:
                notes.append(p.warn(f"placement {kind!r} is not enforced"))
        else:
            notes.append(p.warn(f"policy type {typ!r} has no meaning here; ignored"))
    ext = top.get("metadata").get("template_name").text() or path.stem
    parts = VnfParts(
        external_id=ext, name=ext, version="1.0",
        description=top.get("description").text("") or "", vdu_id=name, vcpu=float(vcpu),
        memory_mb=mem or 1, disk_gb=disk, image=image_node.text(), image_where=image_node,
        connection_points=cps, initial=initial,
        floor=lo if lo is not None and lo != initial else None, maximum=hi, step=step,
        anti_affinity=anti, warnings=notes)
    return build_vnfd(parts, path.name, f"tacker:{ext}", tt)


def _forwarding_graphs(tt: Node, forwarder_id, notes: list[str],
                       given: dict | None) -> list[dict]:
    """One graph per ACL criterion of every forwarding path (FP) node."""
    inputs = _inputs(tt, given)
    graphs = []
    for name, n in tt.get("node_templates").items():
        if not (n.get("type").text() or "").startswith(FP_PREFIX):
            continue
        props = n.get("properties")
        path: list[str] = []
        for hop in props.need("path", "the forwarders in order").elems():
            fwd = hop.need("forwarder").need_text()
            vnf = forwarder_id(fwd, hop.get("forwarder"))
            if path and path[-1] == vnf:
                continue
            if vnf in path:
                hop.fail(f"forwarder {fwd!r} is visited twice; the testbed's chains visit "
                         f"each VNF once")
            path.append(vnf)
        if not path:
            props.get("path").fail("expected a non-empty list of forwarders")
        policy = props.get("policy")
        crits = policy.get("criteria").elems()
        if policy.present and (policy.get("type").text() or "ACL") != "ACL":
            policy.get("type").fail(f"{policy.get('type').text()!r}: only ACL policies are "
                                    f"understood")
        if not crits:
            notes.append(n.warn("no classifier: the graph takes all IPv4 traffic from its "
                                "ingress"))
            graphs.append({"id": name, "classifier": {}, "path": path})
        if _split_criterion(crits):
            notes.append(policy.get("criteria").warn(
                f"{len(crits)} unnamed entries of one key each "
                f"({', '.join(c.items()[0][0] for c in crits)}) are read as one "
                f"classifier, as Tacker read FP.Tacker criteria before named classifiers"))
            graphs.append({"id": name, "classifier": _acl(policy.get("criteria"), inputs,
                                                          notes, crits), "path": path})
            continue
        for i, c in enumerate(crits):
            fields = c.get("classifier") if c.get("classifier").present else c
            gid = name if len(crits) == 1 else f"{name}-{c.get('name').text(str(i))}"
            graphs.append({"id": gid, "classifier": _acl(fields, inputs, notes),
                           "path": path})
    return graphs


def _split_criterion(crits: list[Node]) -> bool:
    """Whether an ACL's criteria are one classifier written one key per list entry
    (``- ip_proto: 6`` / ``- destination_port_range: 80-80``), as Tacker's first VNFFG
    samples and OPNFV SFC's templates write them: several unnamed entries of one key
    each, no key twice. (Entries of several keys, or named ones, are one classifier
    each.)"""
    if len(crits) < 2:
        return False
    keys = []
    for c in crits:
        ks = [k for k, _ in c.items()] if isinstance(c.value, dict) else []
        if len(ks) != 1 or ks[0] in ("name", "classifier"):
            return False
        keys.append(ks[0])
    return len(set(keys)) == len(keys)


def _acl(c: Node, inputs: dict, notes: list[str], split: list[Node] | None = None) -> dict:
    """The classifier of one ACL criterion ``c`` (or of the one-key entries ``split``,
    read together, ``c`` being their list)."""
    vals = {}
    items = [kv for e in split for kv in e.items()] if split is not None else c.items()
    for k, v in items:
        if k in ACL_NEUTRON:
            notes.append(v.warn("a Neutron port or network has no meaning here; the "
                                "graph enters at its ingress endpoint"))
        elif k in ACL_KEYS:
            vals[k] = _resolved(v, inputs)
        elif k != "name":
            v.fail(f"unknown classifier key {k!r}; known: "
                   f"{', '.join(ACL_KEYS + ACL_NEUTRON)}")
    none = Node(None, c.path, c.source)
    et = vals.get("eth_type", none)
    if et.present and str(et.value).lower() not in ("2048", "0x0800", "ipv4"):
        et.fail(f"{et.value!r}: the testbed forwards IPv4 only (0x0800)")
    return classifier(protocol(vals.get("ip_proto", none)),
                      prefix(vals.get("ip_src_prefix", none), notes),
                      prefix(vals.get("ip_dst_prefix", none), notes),
                      port(vals.get("source_port_range", none)),
                      port(vals.get("destination_port_range", none)), c)


def read_vnffgd(top: Node, path: Path, given: dict | None = None):
    """A VNFFGD as an NSD over the VNFDs its paths forward through."""
    tt = top.get("topology_template")
    notes: list[str] = []
    vnfs: list[str] = []

    written: dict[str, str] = {}

    def forwarder(name: str, where: Node) -> str:
        tid = vnfd_id_for(name)
        written[tid] = name
        if tid not in vnfs:
            vnfs.append(tid)
        return tid
    graphs = _forwarding_graphs(tt, forwarder, notes, given)
    _unread(dict(tt.get("node_templates").items()), (), notes)
    for g in tt.get("groups").values():
        for v in g.get("properties").get("constituent_vnfs").elems():
            if vnfd_id_for(v.need_text()) not in vnfs:
                notes.append(v.warn(f"constituent VNF {v.text()!r} is on no forwarding "
                                    f"path; not part of the NS"))
        for key in ("dependent_virtual_link", "connection_point"):
            if g.get("properties").get(key).present:
                notes.append(g.get("properties").get(key).warn("has no meaning here; "
                                                               "ignored"))
    return build_nsd(path.stem, path.stem, "1.0", top.get("description").text("") or "",
                     vnfs, [], graphs, path.name, f"tacker:{path.stem}", notes, tt, written)


def read_nsd(top: Node, path: Path, given: dict | None = None) -> Bundle:
    """A legacy NSD: its imported VNFDs (read from its folder, with their defaults) and
    forwarding paths."""
    tt = top.get("topology_template")
    notes: list[str] = []
    b = Bundle("tacker")
    by_type: dict[str, str] = {}
    by_import: dict[str, str] = {}      # imported VNFD name -> testbed VNFD id
    for imp in top.get("imports").elems():
        name = imp.need_text()
        f = next((path.parent / f"{name}{ext}" for ext in ("", ".yaml", ".yml")
                  if (path.parent / f"{name}{ext}").is_file()), None)
        if f is None:
            imp.fail(f"VNFD {name!r} is not in the NSD's folder (looked for {name}.yaml); "
                     f"Tacker resolves it from its catalogue, the testbed from files")
        data, _ = read_yaml(f)
        vtop = Node(data, "", f.name)
        vnf = read_vnfd(vtop, f)
        b.vnfds.append(vnf)
        by_import[name] = vnf.id
        nt = vtop.get("topology_template").get("substitution_mappings").get("node_type").text()
        if nt:
            by_type[nt] = vnf.id
    members: dict[str, str] = {}
    for k, n in tt.get("node_templates").items():
        t = n.get("type").text()
        if t in by_type:
            members[k] = by_type[t]
        elif t == VL:
            notes.append(n.warn("virtual link: instances have one interface on the data "
                                "center network; ignored"))

    def forwarder(name: str, where: Node) -> str:
        # a node template of the NSD, or (as Tacker's NSD samples write it) the name of
        # an imported VNFD that one node template instantiates
        if name in members:
            return members[name]
        if by_import.get(name) in members.values():
            return by_import[name]
        used = [n for n, t in by_import.items() if t in members.values()]
        where.fail(f"unknown forwarder {name!r}; VNFs of the NSD: "
                   f"{', '.join(members) or 'none'}, or the VNFDs they import: "
                   f"{', '.join(used) or 'none'}")
    graphs = _forwarding_graphs(tt, forwarder, notes, given)
    _unread(dict(tt.get("node_templates").items()), (VL,), notes, tuple(members))
    b.nsds.append(build_nsd(path.stem, path.stem, "1.0",
                            top.get("description").text("") or "", list(members.values()),
                            [], graphs, path.name, f"tacker:{path.stem}", notes, tt))
    return b
