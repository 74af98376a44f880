"""The NFVO as a process: ``python -m mano.server --state DIR --infra URL``.

Serves the NFVO over HTTP + JSON on loopback (the CLI's ``testbed ns|vnf|op`` commands are
its clients) and writes ``DIR/nfvo.json`` ({"pid", "url"}) once it answers. It reaches the
infrastructure only through ``RemoteDriver`` and keeps its records in ``DIR/nfvo.db``; when
it starts it reconciles (see ``NFVO.reconcile``), so it may be killed at any moment.

    POST /vnfd {"path"}                    POST /nsd {"path", "vnfds": [paths]}
    POST /package {"path"}   (every VNFD and NSD in a file or CSAR, any supported format)
    GET  /nsd                              POST /nsd/ID/enable | /nsd/ID/disable
    DELETE /nsd/ID
    GET  /ns      GET /ns/ID               POST /ns {"nsd", "name"}   (instantiate)
    POST /ns/ID/scale {"vnf", "direction", "steps"}
    POST /ns/ID/heal {"instance", "mode"}  POST /ns/ID/terminate
    GET  /vnf     GET /op  GET /op/ID      POST /op/ID/retry | rollback | fail
    GET  /health
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from mano.errors import ConflictError, DescriptorError, MANOError, NotFoundError

log = logging.getLogger("mano.server")


def _status(exc: Exception) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    return 400


def _jsonable(x):
    if dataclasses.is_dataclass(x):
        return dataclasses.asdict(x)
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _onboarded(nfvo, nsd_id: str) -> dict:
    """The answer to an NSD onboarding: its id and what the testbed cannot honour."""
    return {"id": nsd_id, "warnings": nfvo.onboarding_warnings.get(nsd_id, [])}


class NfvoApi:
    def __init__(self, nfvo):
        self.nfvo = nfvo
        n = nfvo
        self.routes = [
            ("GET", r"/health", lambda b: {"ok": True, "pid": os.getpid()}),
            ("POST", r"/vnfd", lambda b: {"id": n.onboard_vnfd(b["path"])}),
            ("POST", r"/nsd", lambda b: _onboarded(n, n.onboard_nsd(b["path"],
                                                                    b.get("vnfds", [])))),
            ("POST", r"/package", lambda b: n.onboard(b["path"])),
            ("GET", r"/nsd", lambda b: n.store.list_nsds()),
            ("POST", r"/nsd/([^/]+)/enable", lambda b, i: n.set_nsd_enabled(i, True)),
            ("POST", r"/nsd/([^/]+)/disable", lambda b, i: n.set_nsd_enabled(i, False)),
            ("DELETE", r"/nsd/([^/]+)", lambda b, i: n.delete_nsd(i)),
            ("GET", r"/ns", lambda b: n.list_ns()),
            ("POST", r"/ns", lambda b: n.instantiate(b["nsd"], b["name"])),
            ("GET", r"/ns/([^/]+)", lambda b, i: n.show_ns(i)),
            ("POST", r"/ns/([^/]+)/scale",
             lambda b, i: n.scale(i, b["vnf"], b.get("direction", "out"), b.get("steps", 1))),
            ("POST", r"/ns/([^/]+)/heal",
             lambda b, i: n.heal(i, b["instance"], b.get("mode"))),
            ("POST", r"/ns/([^/]+)/terminate", lambda b, i: n.terminate(i)),
            ("GET", r"/vnf", lambda b: n.list_vnfs()),
            ("GET", r"/op", lambda b: [vars(o) for o in n.ops.list()]),
            ("GET", r"/op/([^/]+)", lambda b, i: vars(n.ops.get(i))),
            ("POST", r"/op/([^/]+)/retry", lambda b, i: n.retry(i)),
            ("POST", r"/op/([^/]+)/rollback", lambda b, i: n.rollback(i)),
            ("POST", r"/op/([^/]+)/fail", lambda b, i: n.fail(i)),
        ]

    def handle(self, method: str, path: str, body: dict) -> tuple[int, object]:
        for m, pattern, fn in self.routes:
            mt = re.fullmatch(pattern, path)
            if mt and m == method:
                try:
                    return 200, _jsonable(fn(body, *mt.groups()))
                except KeyError as exc:
                    return 400, {"error": f"missing field {exc} in the request body"}
                except (MANOError, DescriptorError) as exc:
                    return _status(exc), {"error": str(exc)}
                except Exception as exc:
                    log.exception("%s %s failed", method, path)
                    return 500, {"error": f"internal error: {exc!r}"}
        return 404, {"error": f"no route {method} {path}"}


def serve(nfvo, state: Path, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    api = NfvoApi(nfvo)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _do(self):
            n = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(n) or b"{}") if n else {}
            except ValueError as exc:
                status, out = 400, {"error": f"body is not JSON: {exc}"}
            else:
                status, out = api.handle(self.command, self.path.rstrip("/") or "/", body)
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _do

    httpd = ThreadingHTTPServer((host, 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="nfvo-api", daemon=True).start()
    url = f"http://{host}:{httpd.server_address[1]}"
    tmp = state / "nfvo.json.tmp"
    tmp.write_text(json.dumps({"pid": os.getpid(), "url": url}))
    os.replace(tmp, state / "nfvo.json")
    return httpd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mano.server")
    ap.add_argument("--state", required=True)
    ap.add_argument("--infra", required=True)
    ap.add_argument("--strategy", default="latency_aware")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from mano.nfvo import NFVO
    from mano.remote import RemoteDriver

    state = Path(args.state)
    driver = RemoteDriver.wait_ready(args.infra)
    nfvo = NFVO(driver, state / "nfvo.db", strategy=args.strategy)
    serve(nfvo, state)
    log.info("NFVO up (pid %d)", os.getpid())
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
