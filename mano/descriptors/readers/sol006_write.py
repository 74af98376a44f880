"""The model written as strict ETSI GS NFV-SOL 006 (v3.6.1 YANG, in YAML): ``testbed
descriptor convert --to sol006``. ``mano.descriptors.readers.sol006`` reads it back to an
equal model, except for the NSD fields SOL006 has no place for (``LOST_NSD_FIELDS``), each
of which is a warning. (OSM's variant of SOL006 is ``osm_write``.)

What SOL006 has no field for but the testbed needs is carried in SOL006's own key-value
extension points, under keys starting ``nfv-testbed:`` (descriptors/README.md, "ETSI
SOL006"): a fractional vCPU share (``vdu-cpu-requirements``), memory in MiB
(``vdu-mem-requirements``), the program's parameters (``vdu.configurable-properties``,
JSON), healing (``heal-vnf-op-config`` parameters). The classifier is the NFP's ``rule``
(SOL006 3.x has no ``match-attributes``), written with the attribute names of the NfpRule
of ETSI GS NFV-IFA 014: ``ether-type=ipv4; protocol=udp; source-ip-address-prefix=10.0.0.1;
destination-ip-address-prefix=10.0.0.16; source-port-range=0-65535;
destination-port-range=5001`` (see ``RULE_KEYS``).

Mandatory nodes that mean nothing here are written with neutral values: a software image
of size 0 whose checksum is the SHA-256 of no bytes (a program of the testbed is no image
file), ``nfvi-maintenance-info`` with a lead time of 0 (the NFVI sends no maintenance
notices) and one ``nfv-testbed:snapshots: unsupported`` parameter in each snapshot
operation's configuration (YANG makes these containers mandatory through a list with
``min-elements 1``).
"""
from __future__ import annotations

import hashlib
import json
import math

from mano.classifiers import DEFAULT_PRECEDENCE
from mano.descriptors.nsd import AUTO, NSD, graphs_conflict
from mano.descriptors.vnfd import VNFD
from mano.errors import DescriptorError

EXT = "nfv-testbed:"              # prefix of the testbed's keys in key-value lists
PROVIDER = "nfv-testbed"
DF_ID = "default"                 # the VNFD's deployment flavour
LEVEL_ID = "default"              # its instantiation level
NS_DF_ID = "default-df"
NO_BYTES_SHA256 = hashlib.sha256(b"").hexdigest()
# model metric -> SOL006 performance-metric (the names OSM uses where one exists)
METRIC_NAMES = {"cpu_util": "cpu_utilization", "packets_rate": "packets_received",
                "bytes_rate": "bytes_received", "liveness": EXT + "liveness"}
# NfpRule attributes (IFA 014) the rule is written with; the reader knows these only
RULE_KEYS = ("ether-type", "protocol", "source-ip-address-prefix",
             "destination-ip-address-prefix", "source-port-range", "destination-port-range")
PROTOCOL_NAMES = {6: "tcp", 17: "udp", 1: "icmp"}
# NSD fields no strict SOL006 node carries: (model field, what a re-import gives)
LOST_NSD_FIELDS = ("description", "vnffg[].ingress", "vnffg[].egress",
                   "vnffg[].protection", "vnffg[].precedence", "sla")


def kv(key: str, value) -> dict:
    """One entry of a SOL006 key-value list under the testbed's prefix."""
    return {"key": EXT + key, "value": str(value)}


def vnfd_to_sol006(v: VNFD) -> tuple[dict, list[str]]:
    """The strict SOL006 form of a VNFD (``{"vnfd": {...}}``) and notes on what other
    MANO will see differently (whole vCPUs, memory in tenths of GB)."""
    notes: list[str] = []
    src = v.source or v.id
    u, f = v.vdu, v.flavour
    cp = u.connection_points[0].id
    compute: dict = {"id": "compute", "virtual-cpu": {"num-virtual-cpu": math.ceil(f.vcpu)},
                     "virtual-memory": {"size": math.ceil(f.memory_mb * 10 / 1024) / 10}}
    if f.disk_gb:       # the flavour's disk: IFA 011's virtualDisk, as in SOL001
        compute["virtual-disk"] = [{"id": "disk", "size-of-storage": f.disk_gb}]
    if compute["virtual-cpu"]["num-virtual-cpu"] != f.vcpu:
        compute["virtual-cpu"]["vdu-cpu-requirements"] = [kv("vcpu", f.vcpu)]
        notes.append(f"{src}: vnfd.vdu[0].flavour.vcpu: {f.vcpu} is written as "
                     f"num-virtual-cpu {math.ceil(f.vcpu)} (SOL006 counts whole virtual "
                     f"CPUs) with the share in vdu-cpu-requirements {EXT}vcpu, which only "
                     f"the testbed reads")
    if compute["virtual-memory"]["size"] * 1024 != f.memory_mb:
        compute["virtual-memory"]["vdu-mem-requirements"] = [kv("memory-mb", f.memory_mb)]
        notes.append(f"{src}: vnfd.vdu[0].flavour.memory_mb: {f.memory_mb} is written as "
                     f"virtual-memory size {compute['virtual-memory']['size']} GB (SOL006 "
                     f"gives tenths of a GB) with the exact size in vdu-mem-requirements "
                     f"{EXT}memory-mb, which only the testbed reads")
    image_name = f"testbed-{u.image.program}"
    vdu: dict = {"id": u.id, "name": u.id, "int-cpd": [{"id": f"{cp}-int"}],
                 "virtual-compute-desc": "compute", "sw-image-desc": "image"}
    if v.monitoring:
        vdu["monitoring-parameter"] = [_monitoring(m, src, i, notes)
                                       for i, m in enumerate(v.monitoring)]
    if u.image.params:
        vdu["configurable-properties"] = [kv("params", json.dumps(u.image.params,
                                                                  sort_keys=True))]
    body: dict = {"id": v.id, "provider": PROVIDER, "product-name": v.name,
                  "software-version": v.version, "version": v.version,
                  "vnfm-info": [PROVIDER]}
    if v.description:
        body["product-info-description"] = v.description
    body.update({
        "vdu": [vdu], "virtual-compute-desc": [compute],
        "sw-image-desc": [{"id": "image", "name": image_name, "version": v.version,
                           "checksum": {"algorithm": "sha-256", "hash": NO_BYTES_SHA256},
                           "container-format": "bare", "disk-format": "raw",
                           "min-disk": 0, "size": 0, "image": image_name}],
        "ext-cpd": [{"id": cp, "int-cpd": {"vdu-id": u.id, "cpd": f"{cp}-int"}}],
        "df": [_vnf_df(v)]})
    return {"vnfd": body}, notes


def _monitoring(m, src: str, i: int, notes: list[str]) -> dict:
    ms = m.interval_s * 1000
    if ms != round(ms) or round(ms) < 1:
        notes.append(f"{src}: vnfd.monitoring[{i}].interval_s: {m.interval_s} is written as "
                     f"collection-period {max(1, round(ms))} ms (SOL006 counts whole ms)")
    return {"id": m.id, "name": m.metric, "performance-metric": METRIC_NAMES[m.metric],
            "collection-period": max(1, round(ms))}


def _vnf_df(v: VNFD) -> dict:
    u, sc = v.vdu, v.scaling
    profile: dict = {"id": u.id, "min-number-of-instances": sc.min,
                     "max-number-of-instances": sc.max,
                     "nfvi-maintenance-info": {"impact-notification-lead-time": 0}}
    df: dict = {"id": DF_ID, "vdu-profile": [profile],
                "instantiation-level": [{"id": LEVEL_ID, "vdu-level": [
                    {"vdu-id": u.id, "number-of-instances": sc.min}]}],
                "default-instantiation-level": LEVEL_ID}
    levels = (sc.max - sc.min) // sc.step
    if levels > 0:
        df["scaling-aspect"] = [{"id": f"scale-{u.id}", "max-scale-level": levels,
                                 "aspect-delta-details": {"deltas": [{
                                     "id": "delta-1", "vdu-delta": [
                                         {"id": u.id, "number-of-instances": sc.step}]}],
                                     "step-deltas": "delta-1"}}]
    if v.placement.anti_affinity:
        df["affinity-or-anti-affinity-group"] = [{"id": "spread",
                                                  "affinityorAntiaffinity": "anti-affinity",
                                                  "scope": "nfvi-node"}]
        profile["affinity-or-anti-affinity-group-id"] = ["spread"]
    df["lcm-operations-configuration"] = {
        "heal-vnf-op-config": {"parameter": [kv("healing-mode", v.healing.mode),
                                             kv("max-restarts", v.healing.max_restarts)]},
        "create-snapshot-vnf-op-config": {"parameter": [kv("snapshots", "unsupported")]},
        "revert-to-snapshot-vnf-op-config": {"parameter": [kv("snapshots", "unsupported")]}}
    return df


# ------------------------------------------------------------------------ NSD
def rule_text(cl: dict) -> str:
    """The NFP rule of a classifier (``RULE_KEYS``; ``ether-type=ipv4`` alone: all IPv4)."""
    parts = ["ether-type=ipv4"]
    if "ip_proto" in cl:
        parts.append(f"protocol={PROTOCOL_NAMES.get(cl['ip_proto'], cl['ip_proto'])}")
    if "ipv4_src" in cl:
        parts.append(f"source-ip-address-prefix={cl['ipv4_src']}")
    if "ipv4_dst" in cl:
        parts.append(f"destination-ip-address-prefix={cl['ipv4_dst']}")
    for k, out in (("src", "source-port-range"), ("dst", "destination-port-range")):
        p = cl.get(f"tcp_{k}") or cl.get(f"udp_{k}")
        if p:
            parts.append(f"{out}={p}")
    return "; ".join(parts)


def lost_graph_fields(n: NSD) -> list[str]:
    """Notes on the NSD fields no SOL006 node carries (both SOL006 writers): the
    graphs' ends, protection and precedence, the SLA. Raises ``DescriptorError`` when,
    without their precedences, two graphs would overlap: the re-imported NSD would be
    refused."""
    notes = []
    src = n.source or n.id
    for i, fg in enumerate(n.vnffg):
        ends = [k for k in ("ingress", "egress") if getattr(fg, k) != AUTO]
        if ends:
            named = " and ".join(f"{k} {getattr(fg, k)}" for k in ends)
            binds = ("the classifier's addresses bind them again" if
                     {"ipv4_src", "ipv4_dst"} <= set(fg.classifier) else
                     "the classifier names no addresses for them: onboarding binds them to "
                     "the first and last endpoint")
            notes.append(f"{src}: nsd.vnffg[{i}].{'/'.join(ends)}: graph {fg.id!r}: "
                         f"{named} are not expressible in SOL006 (an NFP names no "
                         f"endpoint); re-imported, the ends are 'auto' and {binds}")
        if fg.protection:
            notes.append(f"{src}: nsd.vnffg[{i}].protection: true (graph {fg.id!r}): not "
                         f"expressible in SOL006; re-imported, the graph has no backup "
                         f"paths (protection false)")
        if fg.precedence is not None:
            notes.append(f"{src}: nsd.vnffg[{i}].precedence: {fg.precedence} (graph "
                         f"{fg.id!r}): SOL006 has no field for a classifier's precedence "
                         f"(neither the nfpd nor its rule carries one); not written: "
                         f"re-imported, the graph gets the default precedence "
                         f"{DEFAULT_PRECEDENCE}")
    plain = [fg.model_copy(update={"precedence": None}) for fg in n.vnffg]
    for j, later in enumerate(plain):
        for i, fg in enumerate(plain[:j]):
            why = graphs_conflict(fg, later)
            if not why or (n.vnffg[i].precedence is None and n.vnffg[j].precedence is None):
                continue
            k, other = (i, j) if n.vnffg[i].precedence is not None else (j, i)
            a, b = n.vnffg[k], n.vnffg[other]
            raise DescriptorError(
                f"{src}: nsd.vnffg[{k}].precedence: {a.precedence} (graph {a.id!r}): SOL006 "
                f"has no field for a precedence, and without it graph {a.id!r} and "
                f"nsd.vnffg[{other}] {b.id!r} (precedence "
                f"{'none' if b.precedence is None else b.precedence}) overlap "
                f"{why.split(': ', 1)[0]} at the default precedence {DEFAULT_PRECEDENCE}: "
                f"the re-imported NSD would be refused. Make the classifiers disjoint, or "
                f"keep this NSD in the testbed's format")
    if n.sla.to_dict():
        notes.append(f"{src}: nsd.sla: {n.sla.to_dict()}: not expressible in SOL006; "
                     f"re-imported, the NS has no SLA targets")
    return notes


def nsd_to_sol006(n: NSD) -> tuple[dict, list[str]]:
    """The strict SOL006 form of an NSD (``{"nsd": {"nsd": [...]}}``) and what it
    cannot carry (``lost_graph_fields``; the description: an NSD of SOL006 has none).
    One vnffgd per graph: one ``nfp-position-element`` per VNF (its VNF profile) and one
    ``nfpd`` whose ``position-desc`` entries visit them in order, its ``rule`` the
    classifier. Each VNF profile names the VNFD's flavour and instantiation level as
    ``vnfd_to_sol006`` writes them."""
    notes = lost_graph_fields(n)
    src = n.source or n.id
    if n.description:
        notes.insert(0, f"{src}: nsd.description: {n.description!r}: an NSD of SOL006 has "
                        f"no description; not written")
    fgs = []
    for fg in n.vnffg:
        fgs.append({
            "id": fg.id, "vnf-profile-id": list(fg.path),
            "nfp-position-element": [{"id": v, "desc": {"vnf-profile": {
                "vnf-profile-id": v}}} for v in fg.path],
            "nfpd": [{"id": fg.id, "rule": rule_text(fg.classifier), "position-desc": [
                {"id": f"position-{j + 1}", "nfp-position-element-id": [v],
                 "forwarding-behaviour": "all"} for j, v in enumerate(fg.path)]}]})
    body = {"id": n.id, "designer": PROVIDER, "version": n.version, "name": n.name,
            "vnfd-id": list(n.vnfs),
            "virtual-link-desc": [{"id": vl.id, "connectivity-type": {
                "layer-protocol": ["ipv4"]}} for vl in n.virtual_links],
            "vnffgd": fgs,
            "df": [{"id": NS_DF_ID,
                    "vnf-profile": [{"id": v, "vnfd-id": v, "flavour-id": DF_ID,
                                     "instantiation-level": LEVEL_ID} for v in n.vnfs],
                    "ns-instantiation-level": [{"id": LEVEL_ID, "vnf-to-level-mapping": [
                        {"vnf-profile-id": v, "number-of-instances": 1} for v in n.vnfs]}],
                    "default-instantiation-level": LEVEL_ID}]}
    if not body["virtual-link-desc"]:
        del body["virtual-link-desc"]
    return {"nsd": {"nsd": [body]}}, notes
