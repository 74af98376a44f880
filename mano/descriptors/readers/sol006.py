"""ETSI GS NFV-SOL 006 (YANG) descriptors in YAML: strict SOL006 3.x (as
``sol006_write`` writes it) and OSM's variant (SOL006 2.x's NFP layout, as ``osm_write``
and OSM write it). VNFDs are read here, NSDs by ``sol006_nsd``.

Read (descriptors/README.md, "ETSI SOL006 / OSM"):

- ``vnfd``: one ``vdu`` (its ``virtual-compute-desc`` is the flavour, its
  ``sw-image-desc`` chooses the program), ``int-cpd``/``ext-cpd`` (connection points),
  the first ``df``: ``vdu-profile`` (minimum, maximum), ``instantiation-level`` (initial
  count), ``scaling-aspect`` (step and levels), ``affinity-or-anti-affinity-group``;
- ``nsd``: ``vnfd-id``, the first ``df``'s ``vnf-profile``, ``virtual-link-desc`` and
  ``vnffgd``: one graph per ``nfpd`` (per ``match-attributes`` entry when there are
  several); its positions (OSM's ``position-desc-id``, SOL006 3.x's ``position-desc``):
  ``cp-profile-id`` / ``constituent-profile-elements`` in ``order``, or
  ``nfp-position-element-id`` -> ``nfp-position-element`` (``vnf-profile-id``, or
  ``desc.vnf-profile.vnf-profile-id`` in 3.x) give the chain, ``match-attributes`` (OSM)
  or else the nfpd's ``rule`` (3.x; ``sol006_write.RULE_KEYS``) the classifier;
- the testbed's own keys (``nfv-testbed:...``) in SOL006's key-value lists: the vCPU
  share, memory in MiB, the program's parameters, healing (``sol006_write``).

Documents may be ``{vnfd: {...}}``, ``{nsd: {nsd: [...]}}`` (OSM), ``{nsd: {...}}``, the
module-qualified ``etsi-nfv-vnfd:vnfd``/``etsi-nfv-nsd:nsd``, or ``{nfv: {vnfd: [...],
nsd: [...]}}``.
"""
from __future__ import annotations

import json
import math

from mano.descriptors.readers.common import (
    Bundle,
    Node,
    VnfParts,
    build_vnfd,
)
from mano.descriptors.readers.sol006_nsd import read_nsd
from mano.descriptors.readers.sol006_write import EXT
from mano.descriptors.vnfd import HEALING_MODES, VNFD
from mano.descriptors.vnfd import METRICS as MODEL_METRICS

METRICS = {"cpu_utilization": "cpu_util", "cpu_util": "cpu_util",
           "packets_received": "packets_rate", "packets_sent": "packets_rate",
           "bytes_received": "bytes_rate", "bytes_sent": "bytes_rate",
           **{EXT + m: m for m in MODEL_METRICS}}
# the lcm-operations-configuration parameters the testbed itself writes and reads
OWN_LCM_KEYS = {"heal-vnf-op-config": ("healing-mode", "max-restarts"),
                "create-snapshot-vnf-op-config": ("snapshots",),
                "revert-to-snapshot-vnf-op-config": ("snapshots",)}


def documents(data, name: str) -> list[tuple[str, Node]]:
    """("vnfd" | "nsd", descriptor) for every descriptor in a SOL006 document."""
    top = Node(data, "", name)
    out: list[tuple[str, Node]] = []
    for key, kind in (("vnfd", "vnfd"), ("etsi-nfv-vnfd:vnfd", "vnfd"), ("nsd", "nsd"),
                      ("etsi-nfv-nsd:nsd", "nsd")):
        n = top.get(key)
        if not n.present:
            continue
        if isinstance(n.value, list):
            out += [(kind, e) for e in n.elems()]
        elif kind == "nsd" and "nsd" in n.mapping():        # OSM: nsd: {nsd: [...]}
            out += [(kind, e) for e in n.get("nsd").elems()]
        else:
            out.append((kind, n))
    for key in ("nfv", "etsi-nfv-descriptors:nfv"):
        nfv = top.get(key)
        out += [("vnfd", e) for e in nfv.get("vnfd").elems()]
        out += [("nsd", e) for e in nfv.get("nsd").elems()]
    if not out:
        top.fail("no vnfd or nsd in the document")
    return out


def read(data, name: str) -> Bundle:
    """Every VNFD and NSD of a SOL006 document."""
    b = Bundle("sol006")
    for kind, n in documents(data, name):
        n.mapping()
        if kind == "vnfd":
            b.vnfds.append(read_vnfd(n))
        else:
            b.nsds.append(read_nsd(n))
    return b


def _by_id(n: Node) -> dict[str, Node]:
    return {e.need("id").need_text(): e for e in n.elems()}


def _own(kvs: Node) -> dict[str, Node]:
    """The value nodes of the testbed's own entries (``nfv-testbed:<name>``) of a SOL006
    key-value list, by name; an own entry without a value is refused (it would mean
    nothing)."""
    return {e.need("key").need_text()[len(EXT):]: e.need("value", "the parameter's value")
            for e in kvs.elems() if (e.get("key").text() or "").startswith(EXT)}


# ------------------------------------------------------------------------ VNFD
def read_vnfd(d: Node) -> VNFD:
    """One SOL006 VNFD (one VDU) as a ``VNFD``."""
    ext = d.need("id").need_text()
    notes: list[str] = []
    if d.get("kdu").present:
        d.get("kdu").fail("KDUs (Kubernetes/Helm) cannot run on this NFVI (required feature "
                          "missing)")
    vdus = d.need("vdu", "the VNF's VDU").elems()
    if len(vdus) != 1:
        d.get("vdu").fail(f"{len(vdus)} VDUs ({', '.join(v.get('id').text('?') for v in vdus)})"
                          f"; the testbed runs exactly one VDU per VNF (required feature: "
                          f"multi-VDU VNFs)")
    vdu = vdus[0]
    vid = vdu.need("id").need_text()
    computes = _by_id(d.get("virtual-compute-desc"))
    cref = vdu.need("virtual-compute-desc", "the flavour").need_text()
    if cref not in computes:
        vdu.get("virtual-compute-desc").fail(f"unknown virtual-compute-desc {cref!r}; "
                                             f"known: {', '.join(computes) or 'none'}")
    comp = computes[cref]
    for part, used in ((comp, ("id", "virtual-cpu", "virtual-memory", "virtual-disk")),
                       (comp.get("virtual-cpu"), ("num-virtual-cpu", "vdu-cpu-requirements")),
                       (comp.get("virtual-memory"), ("size", "vdu-mem-requirements"))):
        for key, v in part.items():
            if key not in used:
                notes.append(v.warn("has no meaning on this NFVI (instances get a CPU "
                                    "quota, a memory limit and accounted disk only); "
                                    "ignored"))
    vcpu = float(comp.get("virtual-cpu").need("num-virtual-cpu").integer(ge=1))
    share = _own(comp.get("virtual-cpu").get("vdu-cpu-requirements")).get("vcpu")
    if share is not None:
        exact = share.number()
        if exact is None or exact > vcpu:
            share.fail(f"{share.value!r}: expected the share of the {vcpu:g} virtual "
                       f"CPU(s) the VNF may use, a number > 0 and <= {vcpu:g}")
        vcpu = exact
    mem_gb = comp.get("virtual-memory").need("size").number()
    memory_mb = math.ceil(mem_gb * 1024)
    mib = _own(comp.get("virtual-memory").get("vdu-mem-requirements")).get("memory-mb")
    if mib is not None:
        memory_mb = mib.integer(ge=1)
        if memory_mb > mem_gb * 1024:
            mib.fail(f"{memory_mb} MiB is more than the virtual memory size {mem_gb} GB; "
                     f"expected at most {math.floor(mem_gb * 1024)}")
    storages = _by_id(d.get("virtual-storage-desc"))
    disk = 0.0
    for s in comp.get("virtual-disk").elems():      # the flavour's disks (SOL006 3.x)
        disk += s.get("size-of-storage").number(0) or 0
    for s in vdu.get("virtual-storage-desc").elems():
        sid = s.need_text()
        if sid not in storages:
            s.fail(f"unknown virtual-storage-desc {sid!r}; known: "
                   f"{', '.join(storages) or 'none'}")
        st = storages[sid]      # size-of-storage: 3.3.1 and OSM; block-storage-data: 3.5.1
        size = st.get("block-storage-data").get("size-of-storage")
        disk += (size if size.present else st.get("size-of-storage")).number(0) or 0
    images = _by_id(d.get("sw-image-desc"))
    iref = vdu.get("sw-image-desc").text()
    image_where = vdu.get("sw-image-desc")
    image = None
    if iref is not None:
        if iref not in images:
            image_where.fail(f"unknown sw-image-desc {iref!r}; known: "
                             f"{', '.join(images) or 'none'}")
        image = images[iref].get("image").text() or images[iref].get("name").text() or iref
        image_where = images[iref]
    for key in ("cloud-init-file", "cloud-init", "boot-data"):
        if vdu.get(key).present:
            notes.append(vdu.get(key).warn("has no meaning on this NFVI (no guest OS to "
                                           "configure); ignored"))
    int_cps = [c.need("id").need_text() for c in vdu.get("int-cpd").elems()]
    ext_cps = [c.need("id").need_text() for c in d.get("ext-cpd").elems()
               if c.get("int-cpd").get("vdu-id").text() in (None, vid)]
    if d.get("int-virtual-link-desc").present:
        notes.append(d.get("int-virtual-link-desc").warn("internal virtual links: one VDU "
                                                         "needs none; ignored"))
    monitoring = []
    for m in vdu.get("monitoring-parameter").elems():
        metric = m.get("performance-metric").text("")
        if metric in METRICS and METRICS[metric] not in [x["metric"] for x in monitoring]:
            monitoring.append({"id": m.need("id").need_text(), "metric": METRICS[metric]})
            period = m.get("collection-period").integer(ge=1)     # ms
            if period is not None:
                monitoring[-1]["interval_s"] = period / 1000
        else:
            notes.append(m.warn(f"performance metric {metric!r} is not measured here "
                                f"(known: {', '.join(METRICS)})"))
    dfs = d.get("df").elems()
    if not dfs:
        d.fail("missing required key 'df' (a deployment flavour)")
    df = dfs[0]
    if len(dfs) > 1:
        notes.append(d.get("df").warn(f"deployment flavour {df.get('id').text()!r} is used; "
                                      f"{len(dfs) - 1} other(s) are not"))
    _vdu_references(df, vid)
    prof = next((p for p in df.get("vdu-profile").elems() if p.get("id").text() == vid),
                Node({}, df.path + ".vdu-profile", d.source))
    floor = prof.get("min-number-of-instances").integer(ge=0)
    ceiling = prof.get("max-number-of-instances").integer(ge=0)
    initial = _instantiation_count(df, vid)
    if initial is None:
        initial = floor if floor is not None else 1
    step, maximum = 1, (ceiling if ceiling is not None else initial)
    aspects = [a for a in df.get("scaling-aspect").elems() if _delta(a, vid) is not None]
    if aspects:
        a = aspects[0]
        if len(aspects) > 1:
            notes.append(df.get("scaling-aspect").warn(
                f"{len(aspects)} scaling aspects scale {vid}; only "
                f"{a.get('id').text()!r} is used"))
        step = _delta(a, vid) or 1
        levels = a.get("max-scale-level").integer(1, ge=0)
        maximum = initial + levels * step
        if ceiling is not None and maximum > ceiling:
            notes.append(a.warn(f"reaches {maximum} instances; vdu-profile caps {vid} at "
                                f"{ceiling}"))
            maximum = ceiling
        for key in ("scaling-policy", "scaling-config-action"):
            if a.get(key).present:
                notes.append(a.get(key).warn("not run: scaling here is an operation of the "
                                             "NFVO or of its policies"))
    elif ceiling is not None and ceiling > initial:
        notes.append(prof.warn(f"no scaling aspect scales {vid}: it stays at {initial} "
                               f"instance(s)"))
        maximum = initial
    anti = _anti_affinity(df, prof, notes)
    healing = _lcm(df.get("lcm-operations-configuration"), notes)
    for key in ("healing-aspect", "monitoring-parameter"):
        if df.get(key).present:
            notes.append(df.get(key).warn("has no meaning on this NFVI (charms, day-1/2 "
                                          "primitives and policies of other MANO); ignored"))
    params_where = next((e.get("value") for e in vdu.get("configurable-properties").elems()
                         if e.get("key").text() == EXT + "params"), None)
    params = None
    if params_where is not None:
        try:
            params = json.loads(params_where.need_text())
        except ValueError:
            params = None
        if not isinstance(params, dict):
            params_where.fail(f"{params_where.value!r}: expected the program's parameters "
                              f"as a JSON object (e.g. {{\"cost_us\": 0}})")
    parts = VnfParts(
        external_id=ext, name=d.get("product-name").text() or ext,
        version=d.get("version").text() or "1.0",
        description=d.get("description").text() or d.get("product-info-description").text()
        or "", vdu_id=vid, vcpu=vcpu, memory_mb=memory_mb,
        disk_gb=math.ceil(disk), image=image, image_where=image_where,
        connection_points=ext_cps or int_cps, initial=initial,
        floor=floor if floor is not None and floor != initial else None, maximum=maximum,
        step=step, anti_affinity=anti, monitoring=monitoring, warnings=notes, params=params,
        params_where=params_where, healing=healing)
    return build_vnfd(parts, d.source, f"sol006:{ext}", d)


def _vdu_references(df: Node, vid: str) -> None:
    """Refuse a deployment flavour that names a VDU the VNFD does not define (its
    ``vdu-profile``, an instantiation level's ``vdu-level`` or a scaling aspect's
    ``vdu-delta``): what it says of that VDU would otherwise be silently lost."""
    refs = [p.get("id") for p in df.get("vdu-profile").elems()]
    refs += [v.get("vdu-id") for lv in df.get("instantiation-level").elems()
             for v in lv.get("vdu-level").elems()]
    refs += [vd.get("id") for a in df.get("scaling-aspect").elems()
             for dl in a.get("aspect-delta-details").get("deltas").elems()
             for vd in dl.get("vdu-delta").elems()]
    for r in refs:
        if r.present and r.text() != vid:
            r.fail(f"{r.text()!r} names no VDU of this VNFD; its VDU is {vid!r}")


def _instantiation_count(df: Node, vid: str) -> int | None:
    levels = df.get("instantiation-level").elems()
    if not levels:
        return None
    want = (df.get("default-instantiation-level").text()          # 3.x
            or df.get("default-instantiation-level-id").text())   # OSM
    level = next((lv for lv in levels if lv.get("id").text() == want), levels[0])
    for v in level.get("vdu-level").elems():
        if v.get("vdu-id").text() == vid:
            return v.need("number-of-instances").integer(ge=0)
    return None


def _delta(aspect: Node, vid: str) -> int | None:
    for dl in aspect.get("aspect-delta-details").get("deltas").elems():
        for vd in dl.get("vdu-delta").elems():
            if vd.get("id").text() == vid:
                return vd.need("number-of-instances").integer(ge=1)
    return None


def _lcm(lcm: Node, notes: list[str]) -> dict | None:
    """Healing from the testbed's own ``heal-vnf-op-config`` parameters; anything else in
    ``lcm-operations-configuration`` (charms, day-1/2 primitives...) is a warning."""
    foreign = []
    for name, op in lcm.items():
        own = OWN_LCM_KEYS.get(name, ())
        for k, n in op.items():
            if k != "parameter":
                foreign.append(f"{name}.{k}")
                continue
            for e in n.elems():
                key = e.get("key").text() or ""
                if not (key.startswith(EXT) and key[len(EXT):] in own):
                    foreign.append(f"{name}.parameter {key!r}")
    if foreign:
        notes.append(lcm.warn(f"{', '.join(foreign)}: has no meaning on this NFVI (charms, "
                              f"day-1/2 primitives and policies of other MANO); ignored"))
    own = _own(lcm.get("heal-vnf-op-config").get("parameter"))
    if not own:
        return None
    healing: dict = {}
    if "healing-mode" in own:
        mode = own["healing-mode"].text()
        if mode not in HEALING_MODES:
            own["healing-mode"].fail(f"{mode!r}: expected one of {', '.join(HEALING_MODES)}")
        healing["mode"] = mode
    if "max-restarts" in own:
        healing["max_restarts"] = own["max-restarts"].integer(ge=0)
    return healing


def _anti_affinity(df: Node, prof: Node, notes: list[str]) -> bool:
    groups = {g.get("id").text(): g for g in df.get("affinity-or-anti-affinity-group").elems()}
    # OSM: affinity-or-anti-affinity-group [{id}] and type; 3.x: ...-group-id and
    # affinityorAntiaffinity
    refs = [r.get("id") for r in prof.get("affinity-or-anti-affinity-group").elems()]
    refs += prof.get("affinity-or-anti-affinity-group-id").elems()
    for ref in refs:
        g = groups.get(ref.text())
        if g is None:
            ref.fail(f"unknown affinity-or-anti-affinity-group {ref.text()!r}; known: "
                     f"{', '.join(str(k) for k in groups) or 'none'}")
        kind = g.get("type").text() or g.get("affinityorAntiaffinity").text()
        if kind == "anti-affinity":
            scope = g.get("scope").text("nfvi-node")
            if scope != "nfvi-node":
                notes.append(g.warn(f"anti-affinity scope {scope!r}: enforced per compute "
                                    f"node (the NFVI has no zones)"))
            return True
        notes.append(g.warn("affinity between instances of one VDU is not enforced"))
    return False
