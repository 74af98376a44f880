"""What the programs share (standard library only): result files, stop signals, receivers.

Programs write their state as JSON atomically (readers never see a partial file); a
receiver first writes a record with ``"ready": true`` once it listens, which callers wait for.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time


def write_json_atomic(path: str, data: dict) -> None:
    """Write ``data`` as JSON to ``path`` so readers never see a partial file."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def read_result(path: str) -> dict:
    """Return the JSON a program wrote to ``path``."""
    with open(path) as f:
        return json.load(f)


def wait_ready(path: str, timeout: float = 5.0, what: str = "receiver") -> dict:
    """Wait until a receiver has written its readiness record to ``path``; return it.

    Raises TimeoutError if it does not appear within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            data = read_result(path)
            if data.get("ready"):
                return data
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not ready: {path}")
        time.sleep(0.01)


class StopFlag:
    """Set by SIGTERM/SIGINT once ``install``ed; the programs' loops poll ``flag``."""

    def __init__(self) -> None:
        self.flag = False

    def install(self) -> None:
        def handler(signum, frame):
            self.flag = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def udp_receiver(bind: str, port: int, timeout: float) -> socket.socket:
    """A bound UDP socket with a large receive buffer (raises OSError if it cannot bind)."""
    family = socket.AF_INET6 if ":" in (bind or "") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError:
        pass  # the default buffer will do
    try:
        sock.bind((bind or "", port))
    except OSError:
        sock.close()
        raise
    sock.settimeout(timeout)
    return sock
