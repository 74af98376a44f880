"""``testbed descriptor check PATH`` and ``testbed descriptor convert PATH --to FORMAT``.

Both read any supported format (``mano.descriptors.read_descriptors``: the testbed's own,
ETSI SOL001 CSAR or YAML, ETSI SOL006/OSM, Tacker legacy) and need neither root nor the
emulator: this module imports only ``mano.descriptors`` (and PyYAML).

- ``check`` prints what the testbed would run: per VNFD its flavour, program, scaling
  and placement; per NSD its VNFs and forwarding graphs; then every warning (what the
  testbed cannot honour). An unreadable or refused descriptor is an error (exit 2).
- ``convert`` writes the descriptors in the testbed's format (``native``), as strict ETSI
  SOL006 (``sol006``: the 3.6.1 YANG, which the SOL006 reader reads back) or in OSM's
  variant of SOL006 (``osm``: SOL006 2.x's NFP layout, which OSM's NBI onboards), to
  standard output or, with ``--out DIR``, to ``DIR/vnfd/<id>.yaml`` and
  ``DIR/nsd/<id>.yaml``; what the target cannot express goes to standard error as a
  warning naming the file, the field, its value and what a re-import gives instead.
"""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from mano.descriptors import Parameters, read_descriptors
from mano.descriptors.readers.osm_write import nsd_to_osm, vnfd_to_osm
from mano.descriptors.readers.sol006_write import nsd_to_sol006, vnfd_to_sol006
from mano.errors import MANOError
from testbed.errors import TestbedError

# target -> (VNFD writer, NSD writer): each gives (document, warnings)
WRITERS = {"native": (lambda v: (v.to_dict(), []), lambda n: (n.to_dict(), [])),
           "sol006": (vnfd_to_sol006, nsd_to_sol006),
           "osm": (vnfd_to_osm, nsd_to_osm)}
TARGETS = tuple(WRITERS)


def add_parser(sub) -> None:
    """Add ``descriptor check`` and ``descriptor convert`` to the ``testbed`` parser."""
    d = sub.add_parser("descriptor", help="check or convert VNFDs/NSDs of any supported "
                                          "format (no root needed)")
    dsub = d.add_subparsers(dest="descriptor_command", required=True)
    c = dsub.add_parser("check", help="read a descriptor file or package and summarise "
                                      "what would run, with warnings")
    c.add_argument("path", help="a YAML file, a CSAR directory or a CSAR zip")
    add_param_file(c)
    v = dsub.add_parser("convert", help="write descriptors in another format")
    v.add_argument("path")
    add_param_file(v)
    v.add_argument("--to", required=True, choices=TARGETS,
                   help="native: the testbed's format; sol006: strict ETSI SOL006 (3.6.1 "
                        "YANG); osm: OSM's variant of SOL006 (what OSM onboards)")
    v.add_argument("--out", default=None, help="a folder (vnfd/ and nsd/ in it); default: "
                                               "standard output")
    d.set_defaults(func=cmd_descriptor)


def add_param_file(parser) -> None:
    """``--param-file FILE``: values of a TOSCA template's inputs (as Tacker's)."""
    parser.add_argument("--param-file", default=None, metavar="FILE",
                        help="a YAML mapping of input name -> value for the template's "
                             "topology_template.inputs (Tacker's --param-file)")


def parameters(args) -> Parameters | None:
    """The parameters of ``--param-file`` (``None`` without it); ``DescriptorError`` if
    the file is not a YAML mapping."""
    return Parameters.load(args.param_file) if args.param_file else None


def cmd_descriptor(args) -> int:
    try:
        bundle = read_descriptors(args.path, parameters(args))
        if args.descriptor_command == "check":
            print(summary(bundle, args.path))
            return 0
        return convert(bundle, args.to, args.out)
    except MANOError as exc:
        raise TestbedError(str(exc)) from None


def _classifier(cl: dict) -> str:
    if not cl:
        return "all IPv4"
    proto = {6: "tcp", 17: "udp", 1: "icmp"}.get(cl.get("ip_proto"), cl.get("ip_proto"))
    sport = cl.get("tcp_src") or cl.get("udp_src")
    dport = cl.get("tcp_dst") or cl.get("udp_dst")
    src = f"{cl.get('ipv4_src', 'any')}" + (f":{sport}" if sport else "")
    dst = f"{cl.get('ipv4_dst', 'any')}" + (f":{dport}" if dport else "")
    return f"{proto or 'ip'} {src} -> {dst}"


def summary(bundle, path) -> str:
    """The text ``check`` prints."""
    lines = [(f"{path}: {bundle.format}: {len(bundle.vnfds)} VNFD(s), {len(bundle.nsds)} "
             f"NSD(s)")]
    for v in bundle.vnfds:
        f, s = v.flavour, v.scaling
        origin = f" (from {v.origin})" if v.origin else ""
        lines += [f"VNFD {v.id}: {v.name!r} version {v.version}{origin}",
                  f"  flavour: {f.vcpu:g} vCPU, {f.memory_mb} MB memory, {f.disk_gb} GB disk",
                  f"  program: {v.image.program}",
                  f"  scaling: {s.min} at instantiation, up to {s.max}, step {s.step}",
                  f"  placement: {'anti-affinity' if v.placement.anti_affinity else 'any'}"]
    for n in bundle.nsds:
        origin = f" (from {n.origin})" if n.origin else ""
        lines += [f"NSD {n.id}: {n.name!r} version {n.version}{origin}",
                  f"  VNFs: {', '.join(n.vnfs)}"]
        for fg in n.vnffg:
            lines.append(f"  graph {fg.id}: {' -> '.join([fg.ingress, *fg.path, fg.egress])}"
                         f"; classifier {_classifier(fg.classifier)}")
        if any("auto" in (fg.ingress, fg.egress) for fg in n.vnffg):
            lines.append("  (auto: bound at onboarding to the endpoints the classifier's "
                         "addresses name, else the first and last endpoint)")
    lines.append(f"warnings ({len(bundle.warnings)}):" if bundle.warnings else "warnings: none")
    lines += [f"  - {w}" for w in bundle.warnings]
    return "\n".join(lines)


def convert(bundle, target: str, out: str | None) -> int:
    """Write every descriptor of ``bundle`` in ``target``; notes go to standard error."""
    docs: list[tuple[str, str, dict]] = []        # (kind, id, document)
    notes: list[str] = []
    write_vnfd, write_nsd = WRITERS[target]
    for v in bundle.vnfds:
        d, n = write_vnfd(v)
        docs.append(("vnfd", v.id, d))
        notes += n
    for ns in bundle.nsds:
        d, n = write_nsd(ns)
        docs.append(("nsd", ns.id, d))
        notes += n
    for w in bundle.warnings + notes:
        print(f"testbed: warning: {w}", file=sys.stderr)
    if out is None:
        print(yaml.safe_dump_all([d for _, _, d in docs], sort_keys=False), end="")
        return 0
    for kind, did, d in docs:
        f = Path(out) / kind / f"{did}.yaml"
        try:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(yaml.safe_dump(d, sort_keys=False))
        except OSError as exc:
            raise TestbedError(f"--out {out}: cannot write {f}: "
                               f"{exc.strerror or exc}") from None
        print(f"wrote {f}")
    return 0
