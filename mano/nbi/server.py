"""The NFVO as a process: ``python -m mano.nbi.server --state DIR --infra URL [--port N]
[--tls-cert FILE --tls-key FILE]``.

Serves the SOL005 NBI (``mano.nbi.app``) with uvicorn and writes ``DIR/nfvo.json``
({"pid", "url"}) once its socket listens. It reaches the infrastructure only through
``RemoteDriver``, keeps the NFVO's records in ``DIR/nfvo.db`` and the NBI's in
``DIR/nbi.db``; at start the NFVO reconciles (``NFVO.reconcile``), so the process may be
killed at any moment. Operations that fail stay FAILED_TEMP (no automatic rollback): the
client retries, rolls back or fails them, as SOL005 intends.

With ``--tls-cert``/``--tls-key`` (PEM files: the certificate, with its chain, and its
private key) the NBI speaks HTTPS only and its URL is ``https://...``.

Every request needs a bearer token (``mano.nbi.auth``). On the first start the client
``admin`` (project ``admin``) is created and its secret written to
``DIR/clients/admin.secret`` (mode 0600).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from mano.nbi.app import create_app
from mano.nbi.auth import ADMIN, Auth
from mano.nbi.notify import Notifier
from mano.nbi.records import Records
from mano.nfvo import NFVO
from mano.remote import RemoteDriver

log = logging.getLogger("mano.nbi.server")
CLIENTS_DIR = "clients"     # DIR/clients/NAME.secret: the secrets the testbed CLI uses


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port`` 0: any free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def write_info(state: Path, url: str) -> None:
    tmp = state / "nfvo.json.tmp"
    tmp.write_text(json.dumps({"pid": os.getpid(), "url": url}))
    os.replace(tmp, state / "nfvo.json")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mano.nbi.server")
    ap.add_argument("--state", required=True)
    ap.add_argument("--infra", required=True)
    ap.add_argument("--strategy", default="latency_aware")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--token-ttl", type=float, default=3600.0, help="seconds (default 3600)")
    ap.add_argument("--tls-cert", help="PEM certificate (chain) of the NBI: serve HTTPS")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together (the certificate and its key)")
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    state = Path(args.state)
    driver = RemoteDriver.wait_ready(args.infra)
    nfvo = NFVO(driver, state / "nfvo.db", strategy=args.strategy, auto_rollback=False)
    records = Records(state / "nbi.db")
    auth = Auth(records, ttl=args.token_ttl)
    clients = state / CLIENTS_DIR
    clients.mkdir(mode=0o700, exist_ok=True)
    if auth.ensure_admin(clients / f"{ADMIN}.secret"):
        log.info("created client %r; its secret is in %s", ADMIN, clients / f"{ADMIN}.secret")
    sock = listen(args.host, args.port)
    scheme = "https" if args.tls_cert else "http"
    url = f"{scheme}://{args.host}:{sock.getsockname()[1]}"
    notifier = Notifier(records)
    app = create_app(nfvo, records, auth=auth, notifier=notifier, public_url=url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           ssl_certfile=args.tls_cert,
                                           ssl_keyfile=args.tls_key))
    write_info(state, url)
    log.info("NFVO up (pid %d), NBI at %s", os.getpid(), url)
    try:
        server.run(sockets=[sock])
    finally:
        notifier.close()
        nfvo.close()
        records.close()
        driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
