"""The ``testbed`` command.

    testbed demo [--topology FILE] [--protection]   the main job (see README)
    testbed topology check FILE [--largest-component]
    testbed clean [--dry-run]                      remove leftovers of killed runs

Errors the testbed raises on purpose (``TestbedError``) print one message and exit 2;
anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from testbed.errors import TestbedError


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise TestbedError(f"{what} needs root (Mininet and Open vSwitch do); run it with sudo")


def cmd_topology_check(args) -> int:
    from testbed.topology import check_file

    print(check_file(args.file, largest_component=args.largest_component))
    return 0


def cmd_clean(args) -> int:
    _need_root("testbed clean")
    from testbed.emulator import clean

    done = clean(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for line in done:
        print(f"{verb} {line}")
    if not done:
        print("nothing to clean")
    return 0


def cmd_demo(args) -> int:
    _need_root("testbed demo")
    from testbed.demo import run_demo

    run_demo(topology=args.topology, protection=args.protection, results=args.results,
             seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="testbed", description="NFV testbed")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="bring up a data center, deploy a VNF chain, cut a link, "
                                    "measure the outage")
    d.add_argument("--topology", default=None,
                   help="topology file (default: topologies/fat_tree4.yaml)")
    d.add_argument("--protection", action="store_true",
                   help="also measure with fast-failover protection")
    d.add_argument("--results", default="results", help="results folder (default: results)")
    d.add_argument("--seed", type=int, default=1, help="seed (written into the results)")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("topology", help="topology files")
    tsub = t.add_subparsers(dest="topology_command", required=True)
    c = tsub.add_parser("check", help="validate a topology file (no root needed)")
    c.add_argument("file")
    c.add_argument("--largest-component", action="store_true",
                   help="keep the largest connected part of a disconnected topology")
    c.set_defaults(func=cmd_topology_check)

    cl = sub.add_parser("clean", help="remove what killed testbed runs left behind")
    cl.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    cl.set_defaults(func=cmd_clean)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except TestbedError as exc:
        print(f"testbed: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("testbed: interrupted; everything the run created was removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
