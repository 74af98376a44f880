"""ETSI GS NFV-SOL 001 (TOSCA) VNFDs and NSDs, in a CSAR (a directory or zip with
``TOSCA-Metadata/TOSCA.meta``) or a single YAML file.

A package's imports are resolved inside the package; the ETSI type definitions
(``etsi_nfv_sol001_*_types.yaml``) need not be there: the node, policy and group types of
SOL 001 are known here by name. What is read (descriptors/README.md, "ETSI SOL001"):

- VNFD: ``tosca.nodes.nfv.VNF`` (id, name, version), one ``Vdu.Compute`` whose
  ``virtual_compute`` is the flavour, ``VduCp`` (connection points), the policies
  ``ScalingAspects`` + ``VduScalingAspectDeltas`` + ``VduInitialDelta`` +
  ``InstantiationLevels``/``VduInstantiationLevels`` (initial count, step, maximum) and
  ``AntiAffinityRule`` (no two instances on one compute node).
- NSD: ``tosca.nodes.nfv.NS``, the VNFs (by ``descriptor_id``), ``NsVirtualLink``,
  ``Sap``, ``NFP`` -> ``NfpPosition`` -> ``NfpPositionElement``/``Forwarding``/CPs -> VNF
  (the chain), ``NfpRule`` (the classifier) and ``tosca.groups.nfv.VNFFG``.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

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
from mano.descriptors.readers.tosca import (
    Definitions,
    Package,
    bind_inputs,
    entry_of,
    inputs_of,
    policies,
    requirements,
    value_of,
)

VNF, NS = "tosca.nodes.nfv.VNF", "tosca.nodes.nfv.NS"
VDU = "tosca.nodes.nfv.Vdu.Compute"
VDU_CP, EXT_CP, VL = "tosca.nodes.nfv.VduCp", "tosca.nodes.nfv.VnfExtCp", \
    "tosca.nodes.nfv.VnfVirtualLink"
NFP, NFP_POSITION = "tosca.nodes.nfv.NFP", "tosca.nodes.nfv.NfpPosition"
NS_VL, SAP = "tosca.nodes.nfv.NsVirtualLink", "tosca.nodes.nfv.Sap"


def is_tosca_vnf_or_ns(defs: Definitions) -> str:
    """"vnfd" or "nsd": whether the templates describe VNFs (a Vdu.Compute) or an NS."""
    for _, tt in defs.templates():
        for n in tt.get("node_templates").values():
            t = n.get("type").text()
            if defs.derives(t, VDU):
                return "vnfd"
    for _, tt in defs.templates():
        for n in tt.get("node_templates").values():
            t = n.get("type").text()
            if defs.derives(t, NS) or defs.derives(t, NFP):
                return "nsd"
        if defs.derives(tt.get("substitution_mappings").get("node_type").text(), NS):
            return "nsd"
    return "vnfd"


# ------------------------------------------------------------------ the VNFD
def read_vnfd(defs: Definitions, params: Parameters | None = None) -> Bundle:
    """The VNF of a SOL001 VNFD (its first deployment flavour with a VDU)."""
    flavours = [(rel, tt) for rel, tt in defs.templates()
                if any(defs.derives(n.get("type").text(), VDU)
                       for _, n in tt.get("node_templates").items())]
    entry = defs.templates()[0][1] if defs.templates() else None
    if not flavours:
        where = entry or defs.files[defs.order[0]]
        where.fail("no tosca.nodes.nfv.Vdu.Compute node template: a VNF here runs one VDU")
    rel, tt = flavours[0]
    label = defs.pkg.label(rel)
    notes: list[str] = []
    if len(flavours) > 1:
        others = ", ".join(defs.pkg.label(r) for r, _ in flavours[1:])
        notes.append(tt.warn(f"deployment flavour of {label} is used; the others ({others}) "
                             f"are not"))
    inputs = {**inputs_of(tt), **bind_inputs([t for _, t in defs.templates()], params)}
    nodes = dict(tt.get("node_templates").items())
    props: dict = {}
    vnf_name = None
    for r, t in [*(x for x in defs.templates() if x[0] != rel), (rel, tt)]:
        ins = inputs_of(t)
        for name, n in t.get("node_templates").items():
            typ = n.get("type").text()
            if defs.derives(typ, VNF):
                vnf_name = vnf_name or name
                props = {**defs.defaults(typ), **props}
                props.update({k: value_of(v.value, {**ins, **inputs})
                              for k, v in n.get("properties").items()
                              if value_of(v.value, {**ins, **inputs}) is not None})
                for op in n.get("interfaces").get("Vnflcm").values():
                    if op.value not in (None, [], {}):
                        notes.append(op.warn("lifecycle script has no meaning here; "
                                             "not run"))
    vdus = [(k, n) for k, n in nodes.items() if defs.derives(n.get("type").text(), VDU)]
    if len(vdus) > 1:
        tt.get("node_templates").fail(
            f"{len(vdus)} VDUs ({', '.join(k for k, _ in vdus)}); the testbed runs one VDU "
            f"per VNF (required feature: multi-VDU VNFs)")
    vdu_name, vdu = vdus[0]
    vp = vdu.get("properties")
    vc = vdu.get("capabilities").need(
        "virtual_compute", "the flavour; a VDU without one is a Kubernetes resource of a "
        "CNF, which cannot run on this NFVI").get("properties")
    for key, v in vc.items():       # what the testbed reads of it is below
        if key not in ("virtual_cpu", "virtual_memory", "virtual_local_storage"):
            notes.append(v.warn("has no meaning on this NFVI (instances get a CPU quota, a "
                                "memory limit and accounted disk only); ignored"))
    for part, used in (("virtual_cpu", "num_virtual_cpu"),
                       ("virtual_memory", "virtual_mem_size")):
        for key, v in vc.get(part).items():
            if key != used:
                notes.append(v.warn("has no meaning on this NFVI; ignored"))
    vcpu = vc.get("virtual_cpu").need("num_virtual_cpu").number()
    mem = size_mb(vc.get("virtual_memory").need("virtual_mem_size"))
    disk = 0
    for st in vc.get("virtual_local_storage").elems():
        disk += size_mb(st.get("size_of_storage")) or 0
    image = vp.get("sw_image_data").get("name").text()
    image_where = vp.get("sw_image_data").get("name")
    art = vdu.get("artifacts").get("sw_image")
    if image is None and art.present:
        image = posixpath.basename(art.get("file").text("") or "") or None
        image_where = art
    if art.present:
        notes.append(art.warn("the software image file is not used: a VNF program of the "
                              "testbed runs instead (see the image mapping)"))
    for key in ("boot_data", "boot_order", "nfvi_constraints", "monitoring_parameters"):
        if vp.get(key).present:
            notes.append(vp.get(key).warn("has no meaning on this NFVI; ignored"))
    for name, target, r in requirements(vdu):
        if name == "virtual_storage":
            notes.append(r.warn(f"virtual storage {target!r} is not attached (no block "
                                f"storage on this NFVI)"))
    cps = [k for k, n in nodes.items() if defs.derives(n.get("type").text(), VDU_CP)
           and any(t == vdu_name for name, t, _ in requirements(n)
                   if name == "virtual_binding")]
    attached = {t for name, t, _ in requirements(vdu) if name == "virtual_storage"}
    for k, n in nodes.items():
        typ = n.get("type").text()
        if defs.derives(typ, VL):
            notes.append(n.warn("internal virtual link: one VDU needs none; ignored"))
        elif k not in attached and not any(defs.derives(typ, t)
                                           for t in (VNF, VDU, VDU_CP, EXT_CP)):
            notes.append(n.warn(f"node type {typ!r} has no meaning here; ignored"))
    prof = vp.get("vdu_profile")
    floor = prof.get("min_number_of_instances").integer(ge=0)
    ceiling = prof.get("max_number_of_instances").integer(ge=0)
    initial, step, maximum, anti = _scaling(tt, vdu_name, vnf_name, floor, ceiling, notes)
    ext_id = str(props.get("descriptor_id") or vnf_name or defs.pkg.name)
    parts = VnfParts(
        external_id=ext_id, name=str(props.get("product_name") or ext_id),
        version=str(props.get("descriptor_version") or props.get("software_version") or "1.0"),
        description=str(vp.get("description").text("") or ""), vdu_id=vdu_name,
        vcpu=float(vcpu), memory_mb=mem or 1, disk_gb=-(-disk // 1024), image=image,
        image_where=image_where, connection_points=cps, initial=initial,
        floor=floor if floor is not None and floor != initial else None,
        maximum=maximum, step=step, anti_affinity=anti, warnings=notes)
    v = build_vnfd(parts, label, f"sol001:{ext_id}", tt)
    return Bundle("sol001", vnfds=[v])


def _scaling(tt: Node, vdu: str, vnf: str | None, floor, ceiling, notes: list[str]):
    """(initial count, step, maximum, anti-affinity) from the flavour's policies."""
    aspects: dict[str, Node] = {}
    deltas: dict[str, dict[str, int]] = {}
    delta_for_aspect: dict[str, str] = {}
    initial = None
    level_counts: dict[str, int] = {}
    default_level = None
    anti = False
    for name, pol in policies(tt):
        typ = pol.get("type").text("") or ""
        props = pol.get("properties")
        targets = [t.text() for t in pol.get("targets").elems()]
        mine = not targets or vdu in targets or (vnf is not None and vnf in targets)
        kind = typ.rsplit(".", 1)[-1]
        if kind == "ScalingAspects":
            for aid, a in props.get("aspects").items():
                aspects[aid] = a
        elif kind == "VduScalingAspectDeltas" and mine:
            aid = props.need("aspect").need_text()
            deltas[aid] = {k: d.get("number_of_instances").integer(1, ge=0)
                           for k, d in props.get("deltas").items()}
            delta_for_aspect[aid] = name
        elif kind == "VduInitialDelta" and mine:
            initial = props.need("initial_delta").need("number_of_instances").integer(ge=0)
        elif kind == "InstantiationLevels":
            default_level = props.get("default_level").text()
        elif kind == "VduInstantiationLevels" and mine:
            for lid, lv in props.get("levels").items():
                level_counts[lid] = lv.need("number_of_instances").integer(ge=0)
        elif kind == "AntiAffinityRule" and mine:
            anti = True
            scope = props.get("scope").text("nfvi_node")
            if scope != "nfvi_node":
                notes.append(pol.warn(f"anti-affinity scope {scope!r}: enforced per compute "
                                      f"node (the NFVI has no zones)"))
        elif kind == "AffinityRule":
            notes.append(pol.warn("affinity between instances of one VDU is not enforced"))
        else:
            notes.append(pol.warn(f"policy type {typ!r} has no meaning here; ignored"))
    if default_level is not None and default_level in level_counts:
        start = level_counts[default_level]
    elif level_counts:
        start = next(iter(level_counts.values()))
    elif initial is not None:
        start = initial
    else:
        start = floor if floor is not None else 1
    step, maximum = 1, start
    mine_aspects = [a for a in aspects if a in deltas]
    if mine_aspects:
        aid = mine_aspects[0]
        if len(mine_aspects) > 1:
            notes.append(tt.warn(f"scaling aspects {', '.join(mine_aspects)} all scale "
                                 f"{vdu}; only {aid} is used"))
        a = aspects[aid]
        levels = a.get("max_scale_level").integer(0, ge=0)
        step_ids = [s.text() for s in a.get("step_deltas").elems()] or list(deltas[aid])
        sizes = [deltas[aid].get(s, 1) for s in step_ids]
        if len(set(sizes)) > 1:
            notes.append(a.warn(f"non-uniform step deltas {sizes}: every step adds "
                                f"{sizes[0]}"))
        step = sizes[0] if sizes else 1
        maximum = start + levels * step
    if ceiling is not None and maximum > ceiling:
        notes.append(tt.warn(f"{vdu}: the scaling aspect reaches {maximum} instances; "
                             f"vdu_profile caps it at {ceiling}"))
        maximum = max(start, ceiling)
    return start, step, maximum, anti


# ------------------------------------------------------------------ the NSD
def read_nsd(defs: Definitions, params: Parameters | None = None) -> Bundle:
    """The NS of a SOL001 NSD: its VNFs, virtual links and one graph per NFP."""
    tts = defs.templates()
    if not tts:
        defs.files[defs.order[0]].fail("no topology_template")
    rel, tt = next(((r, t) for r, t in tts if any(
        defs.derives(n.get("type").text(), NFP) or defs.derives(n.get("type").text(), NS)
        for _, n in t.get("node_templates").items())), tts[0])
    label = defs.pkg.label(rel)
    inputs = {**inputs_of(tt), **bind_inputs([t for _, t in tts], params)}
    nodes = dict(tt.get("node_templates").items())
    notes: list[str] = []
    ns_props: dict = {}
    for name, n in nodes.items():
        typ = n.get("type").text()
        if defs.derives(typ, NS):
            ns_props = {**defs.defaults(typ), **{k: value_of(v.value, inputs)
                                                 for k, v in n.get("properties").items()}}
    if not ns_props:
        ns_props = {k: value_of(v.value, inputs)
                    for k, v in tt.get("substitution_mappings").get("properties").items()}
    vnf_ids: dict[str, str] = {}
    written: dict[str, str] = {}
    for name, n in nodes.items():
        typ = n.get("type").text()
        if defs.derives(typ, VNF):
            props = {**defs.defaults(typ), **{k: value_of(v.value, inputs)
                                              for k, v in n.get("properties").items()}}
            ext = str(props.get("descriptor_id") or name)
            tid = vnfd_id_for(ext)
            if tid in vnf_ids.values():
                n.fail(f"VNFD {ext!r} is used by two VNFs of the NS; the testbed runs each "
                       f"VNFD once per NS")
            vnf_ids[name] = tid
            written[tid] = ext
    links = [k for k, n in nodes.items() if defs.derives(n.get("type").text(), NS_VL)]
    for n in nodes.values():
        if defs.derives(n.get("type").text(), SAP):
            notes.append(n.warn("service access point: the graph's ends are endpoints of "
                                "the topology, bound at onboarding"))
    rules: dict[str, Node] = {}
    groups: dict[str, str] = {}
    for gname, g in tt.get("groups").items():
        if (g.get("type").text() or "").endswith("VNFFG"):
            for m in g.get("members").elems():
                groups[m.text() or ""] = gname
    for name, pol in policies(tt):
        typ = pol.get("type").text("") or ""
        if typ.endswith("NfpRule"):
            for t in pol.get("targets").elems():
                rules[t.text() or ""] = pol
        else:
            notes.append(pol.warn(f"policy type {typ!r} has no meaning here; ignored"))
    graphs = []
    for name, n in nodes.items():
        if not defs.derives(n.get("type").text(), NFP):
            continue
        path = _nfp_path(defs, nodes, name, n, vnf_ids)
        rule = rules.get(name) or rules.get(groups.get(name, ""))
        cl = _nfp_rule(rule, notes) if rule is not None else {}
        if rule is None:
            notes.append(n.warn("no NfpRule: the graph takes all IPv4 traffic from its "
                                "ingress"))
        graphs.append({"id": name, "classifier": cl, "path": path})
    # the NSD is named by its name when it has one (NSDs are chosen by people; no other
    # descriptor refers to them), else by its descriptor_id
    ext_id = str(ns_props.get("name") or ns_props.get("descriptor_id") or Path(rel).stem)
    nsd = build_nsd(ext_id, str(ns_props.get("name") or ext_id),
                    str(ns_props.get("version") or "1.0"), "", list(vnf_ids.values()),
                    links, graphs, label, f"sol001:{ext_id}", notes,
                    tt.get("node_templates"), written)
    return Bundle("sol001", nsds=[nsd])


def _nfp_path(defs: Definitions, nodes: dict[str, Node], name: str, nfp: Node,
              vnf_ids: dict[str, str]) -> list[str]:
    """The VNF ids along an NFP: its positions in order, each resolved to the VNF it
    forwards to (through position elements, Forwarding nodes and CPs)."""
    path: list[str] = []
    positions = [(t, r) for rn, t, r in requirements(nfp) if rn in ("nfp_position",
                                                                      "forwarding")]
    if not positions:
        nfp.fail("no nfp_position requirement: an NFP needs at least one position")
    for target, r in positions:
        vnf = _vnf_at(defs, nodes, target, vnf_ids, set())
        if vnf is None:
            if target in nodes and defs.derives(nodes[target].get("type").text(), SAP):
                continue                         # an end of the chain
            r.fail(f"{target!r} leads to no VNF of the NS (known VNFs: "
                   f"{', '.join(vnf_ids) or 'none'})")
        if not path or path[-1] != vnf:
            if vnf in path:
                r.fail(f"VNF {vnf!r} is visited twice by NFP {name!r}; the testbed's "
                       f"chains visit each VNF once")
            path.append(vnf)
    if not path:
        nfp.fail("the NFP visits no VNF")
    return path


def _vnf_at(defs, nodes, target: str, vnf_ids: dict[str, str], seen: set) -> str | None:
    if target in vnf_ids:
        return vnf_ids[target]
    if target in seen or target not in nodes:
        return None
    seen.add(target)
    for _, t, _ in requirements(nodes[target]):
        v = _vnf_at(defs, nodes, t, vnf_ids, seen)
        if v is not None:
            return v
    for name, n in nodes.items():              # a VNF whose requirement names the target
        if name in vnf_ids and any(t == target for _, t, _ in requirements(n)):
            return vnf_ids[name]
    return None


def _nfp_rule(rule: Node, notes: list[str]) -> dict:
    props = rule.get("properties")
    for key in ("ether_destination_address", "ether_source_address", "vlan_tag", "dscp",
                "extended_criteria"):
        if props.get(key).present:
            props.get(key).fail("the testbed's classifier matches IPv4 5-tuple fields "
                                "only (required feature missing)")
    et = props.get("ether_type").text("ipv4")
    if et != "ipv4":
        props.get("ether_type").fail(f"{et!r}: the testbed forwards IPv4 only")
    proto = protocol(props.get("protocol"))
    return classifier(proto, prefix(props.get("source_ip_address_prefix"), notes),
                      prefix(props.get("destination_ip_address_prefix"), notes),
                      port(props.get("source_port_range")),
                      port(props.get("destination_port_range")), props)


def read(path: Path, doc=None, params: Parameters | None = None) -> Bundle:
    """A SOL001 CSAR (directory or zip with TOSCA.meta) or single YAML file; ``params``
    give its inputs (checked by ``tosca.bind_inputs``)."""
    pkg = Package(path)
    defs = Definitions(pkg, entry_of(pkg)) if pkg.is_csar else Definitions(pkg, path.name, doc)
    kind = is_tosca_vnf_or_ns(defs)
    b = read_vnfd(defs, params) if kind == "vnfd" else read_nsd(defs, params)
    b.format = "sol001-csar" if pkg.is_csar else "sol001"
    return b
