"""The model written as SOL006 YAML in OSM's layout (``testbed descriptor convert --to
osm``): OSM's information model, which OSM's NBI onboards, follows SOL006 2.x (an NFP as
``position-desc-id``/``cp-profile-id`` with ``match-attributes``) and leaves out nodes
SOL006 makes mandatory; strict SOL006 3.x is ``sol006_write``.
``mano.descriptors.readers.sol006`` reads this back to an equal model for what OSM's
layout can carry (whole vCPUs, memory in GB, programs without parameters other than a
zero cost; not the NSD fields of ``sol006_write.LOST_NSD_FIELDS``)."""
from __future__ import annotations

import math

from mano.descriptors.nsd import NSD
from mano.descriptors.readers.sol006_write import lost_graph_fields
from mano.descriptors.vnfd import VNFD
from mano.errors import DescriptorError


def vnfd_to_osm(v: VNFD) -> tuple[dict, list[str]]:
    """OSM's form of a VNFD and what it cannot express. Programs with
    parameters (rules, addresses) are refused: the image name carries only the program."""
    notes = []
    u = v.vdu
    path = f"{v.source or v.id}: vnfd.vdu[0].image"
    if u.image.program not in ("forwarder", "firewall") or any(
            k != "cost_us" for k in u.image.params if u.image.params[k] not in ([], "allow")):
        raise DescriptorError(f"{path}: program {u.image.program!r} with params "
                              f"{u.image.params}: OSM's layout carries no program "
                              f"parameters; convert --to sol006 (which carries them in "
                              f"configurable-properties) or keep the testbed's format")
    if u.image.params.get("cost_us"):
        notes.append(f"{path}.params.cost_us: {u.image.params['cost_us']}: OSM's layout "
                     f"carries no program parameters; re-imported, the cost is 0 µs")
    f = v.flavour
    vcpu = math.ceil(f.vcpu)
    if vcpu != f.vcpu:
        notes.append(f"{v.source or v.id}: vnfd.vdu[0].flavour.vcpu: {f.vcpu} written as "
                     f"{vcpu} (SOL006 counts whole virtual CPUs); re-imported, the VNF "
                     f"gets {vcpu} vCPU")
    cp = u.connection_points[0].id
    sc = v.scaling
    levels = (sc.max - sc.min) // sc.step
    df: dict = {"id": "default", "vdu-profile": [{"id": u.id, "min-number-of-instances":
                                                   sc.min, "max-number-of-instances": sc.max}],
                "instantiation-level": [{"id": "default", "vdu-level": [
                    {"vdu-id": u.id, "number-of-instances": sc.min}]}]}
    if levels > 0:
        df["scaling-aspect"] = [{"id": f"scale-{u.id}", "max-scale-level": levels,
                                 "aspect-delta-details": {"deltas": [{
                                     "id": "delta-1", "vdu-delta": [
                                         {"id": u.id, "number-of-instances": sc.step}]}]}}]
    if v.placement.anti_affinity:
        df["affinity-or-anti-affinity-group"] = [{"id": "spread", "type": "anti-affinity",
                                                  "scope": "nfvi-node"}]
        df["vdu-profile"][0]["affinity-or-anti-affinity-group"] = [{"id": "spread"}]
    body = {"id": v.id, "product-name": v.name, "provider": "nfv-testbed",
            "software-version": v.version, "vnfm-info": ["nfv-testbed"], "version": v.version,
            "description": v.description,
            "vdu": [{"id": u.id, "name": u.id, "int-cpd": [{"id": f"{cp}-int"}],
                     "virtual-compute-desc": "compute",
                     "virtual-storage-desc": ["storage"] if f.disk_gb else [],
                     "sw-image-desc": "image"}],
            "virtual-compute-desc": [{"id": "compute", "virtual-cpu": {"num-virtual-cpu": vcpu},
                                      "virtual-memory": {"size": round(f.memory_mb / 1024, 3)}}],
            "virtual-storage-desc": [{"id": "storage", "size-of-storage": f.disk_gb}]
            if f.disk_gb else [],
            "sw-image-desc": [{"id": "image", "name": f"testbed-{u.image.program}",
                               "image": f"testbed-{u.image.program}"}],
            "ext-cpd": [{"id": cp, "int-cpd": {"vdu-id": u.id, "cpd": f"{cp}-int"}}],
            "df": [df]}
    if v.monitoring:
        notes.append(f"{v.source or v.id}: vnfd.monitoring: "
                     f"{', '.join(m.id for m in v.monitoring)}: not written in OSM's layout; "
                     f"re-imported, the VNF has no monitoring parameters")
    if v.healing != type(v.healing)():
        notes.append(f"{v.source or v.id}: vnfd.healing: {v.healing.model_dump()}: not "
                     f"expressible in OSM's layout; re-imported, the default "
                     f"{type(v.healing)().model_dump()}")
    return {"vnfd": body}, notes


def nsd_to_osm(n: NSD) -> tuple[dict, list[str]]:
    """OSM's form of an NSD: one vnffgd per graph, its path as
    ``cp-profile-id`` entries in order and its classifier as ``match-attributes``. The
    endpoints are not expressible: the classifier's addresses are what binds them again."""
    notes = lost_graph_fields(n)
    src = n.source or n.id
    if n.description:
        notes.append(f"{src}: nsd.description: written as OSM's description member, "
                     f"which strict SOL006 does not have")
    fgs = []
    for fg in n.vnffg:
        cl = fg.classifier
        match: dict = {"id": f"{fg.id}-match"}
        if "ip_proto" in cl:
            match["ip-proto"] = cl["ip_proto"]
        if "ipv4_src" in cl:
            match["source-ip-address"] = cl["ipv4_src"]
        if "ipv4_dst" in cl:
            match["destination-ip-address"] = cl["ipv4_dst"]
        for k, out in (("src", "source-port"), ("dst", "destination-port")):
            p = cl.get(f"tcp_{k}") or cl.get(f"udp_{k}")
            if p:
                match[out] = p
        fgs.append({"id": fg.id, "vnf-profile-id": list(fg.path), "nfpd": [{
            "id": fg.id, "position-desc-id": [{
                "id": "position-1",
                "cp-profile-id": [{"id": f"{v}-cp", "constituent-profile-elements": [{
                    "id": v, "order": j, "constituent-base-element-id": v,
                    "ingress-constituent-cpd-id": "cp0-ext",
                    "egress-constituent-cpd-id": "cp0-ext"}]} for j, v in enumerate(fg.path)],
                "match-attributes": [match]}]}]})
    body = {"id": n.id, "name": n.name, "version": n.version, "designer": "nfv-testbed",
            **({"description": n.description} if n.description else {}),
            "vnfd-id": list(n.vnfs),
            "virtual-link-desc": [{"id": vl.id, "mgmt-network": False}
                                  for vl in n.virtual_links],
            "df": [{"id": "default-df", "vnf-profile": [{"id": v, "vnfd-id": v}
                                                        for v in n.vnfs]}],
            "vnffgd": fgs}
    return {"nsd": {"nsd": [body]}}, notes
