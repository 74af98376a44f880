"""ETSI GS NFV-SOL 006 NSDs (strict 3.x and OSM's variant) read into the model: one graph
per NFP; the chain from its positions, the classifier from OSM's ``match-attributes`` or
else the NFP's ``rule`` (``sol006_write.RULE_KEYS``). See ``sol006`` for the documents
and descriptors/README.md, "ETSI SOL006 / OSM", for the mapping."""
from __future__ import annotations

import re

from mano.descriptors.nsd import NSD
from mano.descriptors.readers.common import (
    Node,
    build_nsd,
    classifier,
    port,
    prefix,
    protocol,
    vnfd_id_for,
)
from mano.descriptors.readers.sol006_write import RULE_KEYS


def read_nsd(d: Node) -> NSD:
    """One SOL006 NSD as an ``NSD``: one graph per NFP (and classifier)."""
    ext = d.need("id").need_text()
    notes: list[str] = []
    dfs = d.get("df").elems()
    profiles: dict[str, str] = {}                 # vnf-profile id -> testbed VNFD id
    written: dict[str, str] = {}                  # testbed VNFD id -> the id written
    if dfs:
        df = dfs[0]
        if len(dfs) > 1:
            notes.append(d.get("df").warn(f"deployment flavour {df.get('id').text()!r} is "
                                          f"used; {len(dfs) - 1} other(s) are not"))
        for lv in df.get("ns-instantiation-level").elems():
            for m in lv.get("vnf-to-level-mapping").elems():
                count = m.get("number-of-instances").integer(1, ge=0)
                if count != 1:
                    notes.append(m.get("number-of-instances").warn(
                        f"{count} instances of VNF profile "
                        f"{m.get('vnf-profile-id').text()!r}: the NS here runs each VNF once "
                        f"(its own scaling aspect gives more instances); 1"))
        for p in df.get("vnf-profile").elems():
            pid = p.need("id").need_text()
            tid = vnfd_id_for(p.need("vnfd-id").need_text())
            written[tid] = p.get("vnfd-id").text()
            if tid in profiles.values():
                p.get("vnfd-id").fail(f"VNFD {p.get('vnfd-id').text()!r} is used by two VNF "
                                      f"profiles; the testbed runs each VNFD once per NS")
            profiles[pid] = tid
            if p.get("virtual-link-connectivity").present:
                for c in p.get("virtual-link-connectivity").elems():
                    for cp in c.get("constituent-cpd-id").elems():
                        if cp.get("ip-address").present:
                            notes.append(cp.get("ip-address").warn(
                                "fixed addresses are not assigned: instances get theirs "
                                "from the NFVI"))
    else:
        for v in d.need("vnfd-id", "the constituent VNFDs").elems():
            profiles[v.need_text()] = vnfd_id_for(v.need_text())
            written[profiles[v.need_text()]] = v.need_text()
    declared = {vnfd_id_for(v.need_text()) for v in d.get("vnfd-id").elems()}
    for pid, tid in profiles.items():
        if declared and tid not in declared:
            d.get("vnfd-id").fail(f"VNF profile {pid!r} uses a VNFD that vnfd-id does not "
                                  f"list")
    links = [v.need("id").need_text() for v in d.get("virtual-link-desc").elems()]
    if d.get("sapd").present:
        notes.append(d.get("sapd").warn("service access points: the graph's ends are "
                                        "endpoints of the topology, bound at onboarding"))
    graphs = []
    for fg in d.get("vnffgd").elems():
        fg.need("id").need_text()
        elements = {e.get("id").text(): e for e in fg.get("nfp-position-element").elems()}
        nfpds = fg.get("nfpd").elems()
        if not nfpds:
            fg.fail("no nfpd: a forwarding graph here needs a forwarding path")
        for nfpd in nfpds:
            gid = nfpd.need("id").need_text()
            path, rules = _nfp(nfpd, profiles, elements)
            if rules and nfpd.get("rule").present:
                notes.append(nfpd.get("rule").warn("the rule is not read: the graph takes "
                                                   "what match-attributes select"))
            if not rules and nfpd.get("rule").present:
                graphs.append({"id": gid, "classifier": _rule(nfpd.get("rule"), notes),
                               "path": path})
            elif not rules:
                notes.append(nfpd.warn("no match-attributes: the graph takes all IPv4 "
                                       "traffic from its ingress"))
                graphs.append({"id": gid, "classifier": {}, "path": path})
            for i, r in enumerate(rules):
                rid = gid if len(rules) == 1 else f"{gid}-{r.get('id').text(str(i))}"
                graphs.append({"id": rid, "classifier": _match(r, notes), "path": path})
    return build_nsd(ext, d.get("name").text() or ext, d.get("version").text() or "1.0",
                     d.get("description").text() or "", list(profiles.values()), links,
                     graphs, d.source, f"sol006:{ext}", notes, d, written)


def _nfp(nfpd: Node, profiles: dict[str, str], elements: dict) -> tuple[list[str], list]:
    """The chain of VNF ids of an NFP and its match-attributes entries."""
    path: list[str] = []
    rules: list[Node] = []

    def visit(ref: Node, pid: str | None) -> None:
        if pid is None:
            return
        if pid not in profiles:
            ref.fail(f"unknown VNF profile {pid!r}; known: {', '.join(profiles) or 'none'}")
        vnf = profiles[pid]
        if path and path[-1] == vnf:
            return
        if vnf in path:
            ref.fail(f"VNF profile {pid!r} is visited twice; the testbed's chains visit "
                     f"each VNF once")
        path.append(vnf)

    # OSM (SOL006 2.x) writes position-desc-id; SOL006 3.x position-desc
    positions = nfpd.get("position-desc-id").elems() + nfpd.get("position-desc").elems()
    if not positions:
        nfpd.fail("missing required key 'position-desc-id' or 'position-desc' (the "
                  "positions of the path)")
    for pos in positions:
        for cp in pos.get("cp-profile-id").elems():
            elems = cp.get("constituent-profile-elements").elems()
            keyed = sorted(elems, key=lambda e: e.get("order").integer(0, ge=0))
            for e in keyed:
                visit(e.get("constituent-base-element-id"),
                      e.get("constituent-base-element-id").text())
        for ref in pos.get("nfp-position-element-id").elems():
            e = elements.get(ref.text())
            if e is None:
                ref.fail(f"unknown nfp-position-element {ref.text()!r}; known: "
                         f"{', '.join(str(k) for k in elements) or 'none'}")
            pid = e.get("vnf-profile-id").text() or \
                e.get("desc").get("vnf-profile").get("vnf-profile-id").text()
            visit(e, pid)
        rules += pos.get("match-attributes").elems()
    if not path:
        nfpd.fail("the forwarding path visits no VNF profile")
    return path, rules


def _match(r: Node, notes: list[str]) -> dict:
    proto = protocol(r.get("ip-proto"))
    if r.get("constituent-base-element-id").present:
        notes.append(r.get("constituent-base-element-id").warn(
            "classification at a VNF's port: here it happens where the graph enters, at "
            "its ingress endpoint"))
    return classifier(proto, prefix(r.get("source-ip-address"), notes),
                      prefix(r.get("destination-ip-address"), notes),
                      port(r.get("source-port")), port(r.get("destination-port")), r)


def _rule(r: Node, notes: list[str]) -> dict:
    """The classifier of an NFP's ``rule`` (SOL006 3.x has no ``match-attributes``):
    ``key=value`` pairs separated by ``;``, ``,`` or spaces, the keys NfpRule attributes
    of ETSI GS NFV-IFA 014 (``sol006_write.RULE_KEYS``)."""
    text = r.need_text()
    fields: dict[str, str] = {}
    for part in [p for p in re.split(r"[;,\s]+", text) if p]:
        key, _, value = part.partition("=")
        if key not in RULE_KEYS or not value:
            r.fail(f"{part!r} in rule {text!r}: expected key=value pairs separated by ';', "
                   f"the keys NfpRule attributes (ETSI GS NFV-IFA 014): "
                   f"{', '.join(RULE_KEYS)}; e.g. 'ether-type=ipv4; protocol=udp; "
                   f"destination-port-range=5001'")
        if key in fields:
            r.fail(f"{key} is given twice in rule {text!r}")
        fields[key] = value

    def sub(key: str) -> Node:
        return Node(fields.get(key), f"{r.path}[{key}]", r.source)

    ether = fields.get("ether-type", "ipv4").lower()
    if ether not in ("ipv4", "0x0800", "2048"):
        sub("ether-type").fail(f"{ether!r}: the testbed forwards IPv4 only (ipv4, 0x0800)")
    return classifier(protocol(sub("protocol")),
                      prefix(sub("source-ip-address-prefix"), notes),
                      prefix(sub("destination-ip-address-prefix"), notes),
                      port(sub("source-port-range")), port(sub("destination-port-range")), r)
