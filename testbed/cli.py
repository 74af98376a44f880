"""The ``testbed`` command.

    testbed run SCENARIO [--seed N] [--duration S] [--set K=V] [--nfvi emulated|simulated]
    testbed sweep SCENARIO --grid K=V1,V2 [--seeds N] [--nfvi emulated|simulated]
                  [--scheduler ADDRESS] [--workers N]   runs as dask.distributed tasks
    testbed fidelity SCENARIO [--seeds N]          the same runs on both NFVIs, compared
    testbed calibrate [--out FILE] [--quick]       measure the simulated NFVI's timings
    (run, sweep, fidelity: --calibration FILE gives the simulated NFVI its calibration)
    testbed report RUN [RUN ...]
    testbed demo [--topology FILE] [--protection]   restoration vs protection, once
    testbed topology check FILE [--largest-component]
    testbed descriptor check PATH | convert PATH --to sol006|osm|native [--out DIR]
                                                   any descriptor format (no root needed)
    testbed clean [--dry-run]                      remove leftovers of killed runs
    testbed up [TOPOLOGY] [--state DIR]            a running testbed (emulation + NFVO)
    testbed down [--state DIR]
    testbed ns onboard NSD.yaml [--vnfd F ...] | instantiate NSD NAME | scale NS VNF
               [--in] [--steps N] | heal NS INSTANCE [--mode restart|recreate] |
               terminate NS | delete NS | list | show NS
    testbed vnf list
    testbed op list | show ID | retry ID | rollback ID | fail ID | cancel ID
    testbed token [--client NAME]                  a bearer token for the NBI
    testbed client list | add NAME --project P | remove NAME

``ns``, ``vnf`` and ``op`` are clients of the NFVO's SOL005 NBI (``mano.nbi.client``,
httpx); NS may be given by name or id. LCM commands wait for the operation to end
(``--no-wait`` not) and exit 1 unless it COMPLETED.

Errors the testbed raises on purpose (``TestbedError``) print one message and exit 2;
anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from mano.errors import MANOError
from testbed import descriptor_cli
from testbed.errors import TestbedError
from testbed.nfvi import KINDS as NFVI_KINDS
from testbed.statedir import DEFAULT_STATE


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


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise TestbedError(f"--set {pair!r}: expected key=value")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_run(args) -> int:
    if args.nfvi == "emulated":
        _need_root("testbed run --nfvi emulated")
    from testbed.experiment.engine import run_scenario

    run_dir = run_scenario(args.scenario, seed=args.seed, duration=args.duration,
                           overrides=_overrides(args.set), results_dir=args.results,
                           nfvi=args.nfvi, calibration=args.calibration)
    import json
    summary = json.loads((run_dir / "summary.json").read_text())
    print((run_dir / "summary.md").read_text())
    print(f"results and plots: {run_dir}/ (timeline.png, recovery_cdf.png)")
    if not summary.get("passed", False):
        print(f"testbed: run FAILED: {'; '.join(_failures(summary))}", file=sys.stderr)
        return 1
    return 0


def _failures(summary: dict) -> list[str]:
    """Why a run did not pass, in words."""
    out = [f"check {c['check']} failed ({c['detail']})" for c in summary.get("checks", [])
           if not c["ok"]]
    if summary.get("leftovers"):
        out.append(f"left over after tear-down: {', '.join(summary['leftovers'])}")
    if summary.get("error"):
        out.append(str(summary["error"]))
    if summary.get("healthy_at_end") is False:
        out.append(f"not healthy at the end (NS states {summary.get('ns_states')})")
    return out or ["see summary.md"]


def cmd_report(args) -> int:
    from testbed.experiment import plots, results

    runs = [results.load_run(Path(r)) for r in args.runs]
    for run, path in zip(runs, args.runs):
        summary = results.summarize(run)
        results.write_summary(Path(path), summary)
        plots.plot_timeline(run, Path(path) / "timeline.png")
        plots.plot_recovery_cdf([run], Path(path) / "recovery_cdf.png")
        print(f"{path}: redrawn")
    if len(runs) > 1:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plots.plot_compare(runs, out / "compare.png")
        plots.plot_recovery_cdf(runs, out / "recovery_cdf.png")
        print(f"comparison: {out}/compare.png, {out}/recovery_cdf.png")
    return 0


def cmd_sweep(args) -> int:
    if args.nfvi == "emulated" and args.scheduler is None:
        _need_root("testbed sweep --nfvi emulated")
    import itertools

    from testbed.experiment import plots, sweep
    from testbed.experiment.sweeprun import RunSpec, run_sweep

    grid = {}
    for spec in args.grid or []:
        k, _, vals = spec.partition("=")
        grid[k] = vals.split(",")
    combos = [dict(zip(grid, c)) for c in itertools.product(*grid.values())] or [{}]
    seeds = list(range(args.seed, args.seed + args.seeds))
    results_dir = Path(args.results).resolve()
    specs = [RunSpec(str(Path(args.scenario).resolve()), combo, seed, args.nfvi,
                     str(results_dir), args.duration, _overrides(args.set),
                     str(Path(args.calibration).resolve()) if args.calibration else None)
             for combo in combos for seed in seeds]
    outcomes = run_sweep(specs, nfvi=args.nfvi, scheduler=args.scheduler,
                         workers=args.workers)
    summaries = [o["summary"] for o in outcomes if o["ok"]]
    failed = [f"{s.combo} seed {s.seed}: {o['error']}" for s, o in zip(specs, outcomes)
              if not o["ok"]]
    if not summaries:
        raise TestbedError("every run of the sweep failed:\n  " + "\n  ".join(failed))
    by = list(grid)
    rows = sweep.aggregate(summaries, by=by)
    out = results_dir / Path(args.scenario).stem / "sweep"
    out.mkdir(parents=True, exist_ok=True)
    sweep.write_table(rows, out / "sweep.csv", out / "sweep.md")
    sweep.write_brief(rows, by, out / "brief.md")
    figs = plots.plot_sweep(rows, by, sweep.headline(rows), out,
                            title=f"{Path(args.scenario).stem} ({args.nfvi})")
    print((out / "brief.md").read_text())
    print(f"every measure: {out}/sweep.csv, sweep.md; plots: "
          + ", ".join(p.name for p in figs))
    if failed:
        print("testbed: these runs failed (their folders hold what they measured):\n  "
              + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


def cmd_fidelity(args) -> int:
    from testbed.fidelity import run_fidelity

    out, last = run_fidelity(args.scenario, seeds=args.seeds, first_seed=args.seed,
                             out=args.out, results_dir=args.results,
                             calibration=args.calibration, duration=args.duration,
                             overrides=_overrides(args.set))
    print((out / "fidelity.md").read_text())
    print(f"table, data and plot: {out}/ (fidelity.md, fidelity.csv, fidelity.png)")
    print(last)
    return 0


def cmd_calibrate(args) -> int:
    from testbed.calibrate import run_calibration

    path = run_calibration(args.out, quick=args.quick, reps=args.reps,
                           command=" ".join(["testbed", *sys.argv[1:]]))
    print(f"calibration written: {path}")
    return 0


def cmd_up(args) -> int:
    _need_root("testbed up")
    from testbed.daemon import run_daemon
    from testbed.demo import DEFAULT_TOPOLOGY
    from testbed.topology import load_topology

    tls = None
    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise TestbedError("--tls-cert and --tls-key go together: the NBI's certificate "
                               "(PEM) and its private key (PEM)")
        for opt, f in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
            if not os.access(f, os.R_OK):
                raise TestbedError(f"{opt} {f}: no readable file there")
        tls = (os.path.abspath(args.tls_cert), os.path.abspath(args.tls_key))
    topo = load_topology(args.topology or DEFAULT_TOPOLOGY)
    return run_daemon(topo, Path(args.state), nbi_port=args.nbi_port, tls=tls)


def cmd_down(args) -> int:
    from testbed.daemon import stop_daemon

    print("stopped" if stop_daemon(Path(args.state)) else "no testbed was running")
    return 0


def _token(args, url: str) -> str:
    """A bearer token: $TESTBED_TOKEN, else one for --client from its secret file."""
    from mano.nbi.client import NbiClient, tls_verify

    if os.environ.get("TESTBED_TOKEN"):
        return os.environ["TESTBED_TOKEN"]
    path = Path(args.state) / "clients" / f"{args.client}.secret"
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise TestbedError(f"no secret for client {args.client!r}: cannot read {path} "
                           f"({exc.strerror}); run as the user of `testbed up` (root), pass "
                           f"--client, or set TESTBED_TOKEN") from None
    return _call(NbiClient.token, url, args.client, secret,
                 verify=_call(tls_verify, args.cacert))["access_token"]


def _nbi(args):
    from mano.nbi.client import NbiClient, tls_verify
    from testbed.daemon import nfvo_url

    url = nfvo_url(Path(args.state))
    return NbiClient(url, _token(args, url), verify=_call(tls_verify, args.cacert))


def cmd_token(args) -> int:
    from testbed.daemon import nfvo_url

    print(_token(args, nfvo_url(Path(args.state))))
    return 0


def cmd_client(args) -> int:
    nbi = _nbi(args)
    try:
        if args.client_command == "list":
            _table(_call(nbi.get, "/admin/v1/clients"), ["clientId", "project"])
        elif args.client_command == "add":
            out = _call(nbi.request, "POST", "/admin/v1/clients", json={
                "clientId": args.name, "project": args.project}).json()
            folder = Path(args.state) / "clients"
            path = folder / f"{args.name}.secret"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(out["clientSecret"] + "\n")
            print(f"client {args.name} (project {args.project}): secret in {path}")
        else:
            _call(nbi.request, "DELETE", f"/admin/v1/clients/{args.name}")
            (Path(args.state) / "clients" / f"{args.name}.secret").unlink(missing_ok=True)
            print(f"client {args.name} removed")
    finally:
        nbi.close()
    return 0


def _call(fn, *a, **kw):
    from mano.nbi.client import NbiError

    try:
        return fn(*a, **kw)
    except NbiError as exc:
        raise TestbedError(exc.detail) from None


def _print(obj) -> None:
    import json
    print(json.dumps(obj, indent=1, default=str))


def _table(rows: list[dict], cols: list[str]) -> None:
    if not rows:
        print("(none)")
        return
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)))


def _finish(nbi, args, name: str, op_id: str) -> int:
    """Wait for the occurrence unless --no-wait; print its outcome; 1 unless COMPLETED."""
    if getattr(args, "no_wait", False):
        print(f"NS {name}: operation {op_id} started")
        return 0
    op = _call(nbi.wait, op_id)
    line = f"NS {name}: {op['lcmOperationType']} {op['operationState']} (operation {op_id})"
    if op["operationState"] == "COMPLETED":
        print(line)
        return 0
    err = (op.get("error") or {}).get("detail", "")
    print(line + (f": {err}" if err else ""), file=sys.stderr)
    return 1


def cmd_ns(args) -> int:
    nbi = _nbi(args)
    try:
        return _ns(nbi, args)
    finally:
        nbi.close()


def _ns(nbi, args) -> int:
    c = args.ns_command
    if c == "onboard":
        have = {p.get("vnfdId") for p in _call(nbi.list, "/vnfpkgm/v1/vnf_packages")}
        from mano import descriptors as D

        for v in args.vnfd or []:
            vid = D.load_vnfd(v).id
            if vid in have:
                print(f"VNFD {vid} is onboarded already")
                continue
            pkg = _call(nbi.onboard_vnfd, v)
            print(f"onboarded VNFD {pkg['vnfdId']} (VNF package {pkg['id']})")
        info = _call(nbi.onboard_nsd, args.nsd)
        print(f"onboarded NSD {info['nsdId']} (NSD info {info['id']})")
    elif c == "instantiate":
        from mano.nbi.client import NbiError

        try:
            ns = nbi.ns_by_name_or_id(args.name)
        except NbiError as exc:
            if exc.status != 404:
                raise TestbedError(exc.detail) from None
            ns = None          # no such NS yet: create it
        if ns is None or ns["nsState"] != "NOT_INSTANTIATED" or ns["nsdId"] != args.nsd:
            ns = _call(nbi.request, "POST", "/nslcm/v1/ns_instances", json={
                "nsdId": args.nsd, "nsName": args.name, "nsDescription": ""}).json()
        op = _call(nbi.task, ns["id"], "instantiate", {"nsFlavourId": "default"})
        return _finish(nbi, args, args.name, op)
    elif c in ("scale", "heal", "terminate", "delete"):
        ns = _call(nbi.ns_by_name_or_id, args.ns)
        if c == "scale":
            body = {"scaleType": "SCALE_VNF", "scaleVnfData": [{
                "vnfInstanceId": args.vnf,
                "scaleVnfType": "SCALE_IN" if args.scale_in else "SCALE_OUT",
                "scaleByStepData": {"aspectId": "default", "numberOfSteps": args.steps}}]}
        elif c == "heal":
            extra = {"mode": args.mode} if args.mode else {}
            body = {"healVnfData": [{"vnfInstanceId": args.instance,
                                     "additionalParams": extra}]}
        elif c == "terminate":
            body = {}
        else:
            _call(nbi.request, "DELETE", f"/nslcm/v1/ns_instances/{ns['id']}")
            print(f"NS {args.ns}: deleted")
            return 0
        return _finish(nbi, args, args.ns, _call(nbi.task, ns["id"], c, body))
    elif c == "list":
        rows = [{"id": n["id"], "name": n["nsInstanceName"], "nsd": n["nsdId"],
                 "state": n["nsState"]} for n in _call(nbi.list, "/nslcm/v1/ns_instances")]
        _table(rows, ["id", "name", "nsd", "state"])
    elif c == "show":
        ns = _call(nbi.ns_by_name_or_id, args.ns)
        ns["operations"] = _call(nbi.list, "/nslcm/v1/ns_lcm_op_occs", all_fields="",
                                 filter=f"(eq,nsInstanceId,{ns['id']})")
        _print(ns)
    return 0


def cmd_vnf(args) -> int:
    nbi = _nbi(args)
    rows = []
    try:
        for ns in _call(nbi.list, "/nslcm/v1/ns_instances", fields="vnfInstance"):
            for v in ns.get("vnfInstance", []):
                info = v.get("instantiatedVnfInfo") or {}
                for c in info.get("vnfcResourceInfo", []):
                    m = c.get("metadata", {})
                    rows.append({"id": c["id"], "ns": ns["nsInstanceName"],
                                 "vnfd": v["vnfdId"], "state": m.get("state"),
                                 "compute_node": m.get("computeNode"),
                                 "switch": m.get("switch"), "ip": m.get("ip")})
    finally:
        nbi.close()
    _table(rows, ["id", "ns", "vnfd", "state", "compute_node", "switch", "ip"])
    return 0


def cmd_op(args) -> int:
    nbi = _nbi(args)
    try:
        c = args.op_command
        if c == "list":
            names = {n["id"]: n["nsInstanceName"]
                     for n in _call(nbi.list, "/nslcm/v1/ns_instances")}
            rows = [{"id": o["id"], "ns": names.get(o["nsInstanceId"], o["nsInstanceId"]),
                     "operation": o["lcmOperationType"], "state": o["operationState"],
                     "error": (o.get("error") or {}).get("detail", "")}
                    for o in _call(nbi.list, "/nslcm/v1/ns_lcm_op_occs",
                                   exclude_fields="operationParams")]
            _table(rows, ["id", "ns", "operation", "state", "error"])
        elif c == "show":
            _print(_call(nbi.get, f"/nslcm/v1/ns_lcm_op_occs/{args.id}"))
        elif c == "fail":
            op = _call(nbi.op_task, args.id, "fail").json()
            print(f"operation {args.id}: {op['operationState']}")
        else:   # retry, rollback, cancel: 202 and the occurrence to follow
            r = _call(nbi.op_task, args.id, c)
            op_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[1]
            op = _call(nbi.wait, op_id)
            print(f"operation {args.id}: {c}: operation {op_id} {op['operationState']}")
            return 0 if op["operationState"] in ("COMPLETED", "ROLLED_BACK") else 1
    finally:
        nbi.close()
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

    r = sub.add_parser("run", help="run a scenario (SimPy-driven load and faults) and write "
                                   "results and plots")
    r.add_argument("scenario", help="a scenario file, e.g. scenarios/chain_heal_link.py")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--duration", type=float, default=None, help="seconds (default: the "
                                                               "scenario's DURATION)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="a scenario parameter")
    r.add_argument("--results", default="results")
    r.add_argument("--nfvi", default="emulated", choices=sorted(NFVI_KINDS),
                   help="the infrastructure to run on (default: emulated)")
    _with_calibration(r)
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser("report", help="re-draw runs' summaries and plots; compare several")
    rp.add_argument("runs", nargs="+", help="run folders results/<scenario>/<run-id>")
    rp.add_argument("--out", default="results/report", help="where a comparison goes")
    rp.set_defaults(func=cmd_report)

    sw = sub.add_parser("sweep", help="run a grid of parameters x seeds and aggregate them")
    sw.add_argument("scenario")
    sw.add_argument("--grid", action="append", metavar="KEY=V1,V2,...")
    sw.add_argument("--seeds", type=int, default=3, help="number of seeds per grid point")
    sw.add_argument("--seed", type=int, default=1, help="first seed")
    sw.add_argument("--duration", type=float, default=None)
    sw.add_argument("--set", action="append", metavar="KEY=VALUE")
    sw.add_argument("--results", default="results")
    sw.add_argument("--nfvi", default="emulated", choices=sorted(NFVI_KINDS))
    sw.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="a running dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a "
                         "local cluster made for the sweep); emulated runs need workers "
                         "started with --resources emulation=1")
    sw.add_argument("--workers", type=int, default=None,
                    help="worker processes of the local cluster (default: one per core; "
                         "emulated: one)")
    _with_calibration(sw)
    sw.set_defaults(func=cmd_sweep)

    fi = sub.add_parser("fidelity", help="run a scenario on both NFVIs over seeds and compare "
                                         "(needs root)")
    fi.add_argument("scenario")
    fi.add_argument("--seeds", type=int, default=3, help="seeds per NFVI (at least 2)")
    fi.add_argument("--seed", type=int, default=1, help="first seed")
    fi.add_argument("--duration", type=float, default=None)
    fi.add_argument("--set", action="append", metavar="KEY=VALUE")
    fi.add_argument("--results", default="results")
    fi.add_argument("--out", default=None,
                    help="output folder (default RESULTS/<scenario>/fidelity)")
    _with_calibration(fi)
    fi.set_defaults(func=cmd_fidelity)

    ca = sub.add_parser("calibrate", help="measure the emulated NFVI and write a calibration "
                                          "file for the simulated one (needs root)")
    ca.add_argument("--out", default="calibration.json", help="file to write "
                                                             "(default calibration.json)")
    ca.add_argument("--reps", type=int, default=None,
                    help="repetitions of each measurement (default 5, --quick 2)")
    ca.add_argument("--quick", action="store_true",
                    help="fewer repetitions and shorter loads (under a minute)")
    ca.set_defaults(func=cmd_calibrate)

    t = sub.add_parser("topology", help="topology files")
    tsub = t.add_subparsers(dest="topology_command", required=True)
    c = tsub.add_parser("check", help="validate a topology file (no root needed)")
    c.add_argument("file")
    c.add_argument("--largest-component", action="store_true",
                   help="keep the largest connected part of a disconnected topology")
    c.set_defaults(func=cmd_topology_check)

    descriptor_cli.add_parser(sub)

    def with_state(sp):
        sp.add_argument("--state", default=str(DEFAULT_STATE),
                        help=f"state directory of the running testbed (default {DEFAULT_STATE})")
        return sp

    client_default = os.environ.get("TESTBED_CLIENT", "admin")

    def with_client(sp):
        with_state(sp).add_argument(
            "--client", default=client_default,
            help="NBI client to act as, its secret read from STATE/clients/NAME.secret "
                 "(default $TESTBED_CLIENT or admin; $TESTBED_TOKEN overrides)")
        sp.add_argument("--cacert", default=os.environ.get("TESTBED_CACERT"),
                        help="PEM file of the CA certificate(s) to trust for an NBI served "
                             "over HTTPS (default $TESTBED_CACERT; else the system's CAs)")
        return sp

    up = with_state(sub.add_parser("up", help="run a testbed (emulation + NFVO) until stopped"))
    up.add_argument("topology", nargs="?", default=None)
    up.add_argument("--nbi-port", type=int, default=0,
                    help="TCP port of the NFVO's SOL005 NBI on 127.0.0.1 (default: a free one, "
                         "kept across NFVO restarts)")
    up.add_argument("--tls-cert", metavar="FILE",
                    help="PEM certificate (with its chain) for the NBI: it then serves HTTPS")
    up.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    up.set_defaults(func=cmd_up)
    with_state(sub.add_parser("down", help="stop the running testbed")).set_defaults(
        func=cmd_down)

    ns = sub.add_parser("ns", help="network services (on the running testbed)")
    nsub = ns.add_subparsers(dest="ns_command", required=True)
    o = with_client(nsub.add_parser("onboard", help="onboard an NSD (and its VNFDs)"))
    o.add_argument("nsd")
    o.add_argument("--vnfd", action="append", help="a VNFD file to onboard first (repeat)")
    i = with_client(nsub.add_parser("instantiate", help="instantiate an NS from an NSD"))
    i.add_argument("nsd")
    i.add_argument("name")
    sc = with_client(nsub.add_parser("scale", help="scale a VNF of an NS out (or --in)"))
    sc.add_argument("ns")
    sc.add_argument("vnf")
    sc.add_argument("--in", dest="scale_in", action="store_true")
    sc.add_argument("--steps", type=int, default=1)
    he = with_client(nsub.add_parser("heal", help="heal a VNF instance"))
    he.add_argument("ns")
    he.add_argument("instance")
    he.add_argument("--mode", choices=["restart", "recreate"], default=None)
    te = with_client(nsub.add_parser("terminate", help="terminate an NS"))
    te.add_argument("ns")
    de = with_client(nsub.add_parser("delete", help="delete a NOT_INSTANTIATED NS instance"))
    de.add_argument("ns")
    for sp in (i, sc, he, te):
        sp.add_argument("--no-wait", action="store_true",
                        help="return once the operation has started")
    with_client(nsub.add_parser("list", help="list NS instances"))
    sh = with_client(nsub.add_parser("show", help="show an NS with its VNFs and operations"))
    sh.add_argument("ns")
    ns.set_defaults(func=cmd_ns)

    vnf = sub.add_parser("vnf", help="VNF instances")
    vsub = vnf.add_subparsers(dest="vnf_command", required=True)
    with_client(vsub.add_parser("list"))
    vnf.set_defaults(func=cmd_vnf)

    op = sub.add_parser("op", help="operation occurrences")
    osub = op.add_subparsers(dest="op_command", required=True)
    with_client(osub.add_parser("list"))
    for name in ("show", "retry", "rollback", "fail", "cancel"):
        with_client(osub.add_parser(name)).add_argument("id")
    op.set_defaults(func=cmd_op)

    tk = with_client(sub.add_parser("token", help="print a bearer token for the NBI"))
    tk.set_defaults(func=cmd_token)
    cli = sub.add_parser("client", help="NBI clients and their projects (admin only)")
    csub = cli.add_subparsers(dest="client_command", required=True)
    with_client(csub.add_parser("list"))
    ca = with_client(csub.add_parser("add", help="add a client; its secret goes to "
                                                 "STATE/clients/NAME.secret"))
    ca.add_argument("name")
    ca.add_argument("--project", required=True, help="the tenant the client acts in")
    with_client(csub.add_parser("remove")).add_argument("name")
    cli.set_defaults(func=cmd_client)

    cl = sub.add_parser("clean", help="remove what killed testbed runs left behind")
    cl.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    cl.set_defaults(func=cmd_clean)
    return p


def _with_calibration(sp) -> None:
    sp.add_argument("--calibration", default=None, metavar="FILE",
                    help="calibration file of the simulated NFVI (default: the shipped one, "
                         "testbed/nfvi/simulated/calibration.json)")


def build_descriptor_parser() -> argparse.ArgumentParser:
    """The parser of ``testbed descriptor ...`` alone: it imports no emulator code (the
    full parser reads the daemon's defaults, which imports Mininet)."""
    p = argparse.ArgumentParser(prog="testbed", description="NFV testbed")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    descriptor_cli.add_parser(p.add_subparsers(dest="command", required=True))
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    words = [a for a in argv if not a.startswith("-")]
    parser = build_descriptor_parser() if words[:1] == ["descriptor"] else build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except (TestbedError, MANOError) as exc:
        print(f"testbed: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("testbed: interrupted; everything the run created was removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
