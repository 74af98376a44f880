"""Result files shared by the programs and their callers (standard library only).

Programs write their state as JSON atomically (readers never see a partial file); a
receiver first writes a record with ``"ready": true`` once it listens, which callers wait for.
"""
from __future__ import annotations

import json
import os
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
