"""uvicorn serving an ASGI application (FastAPI) from a daemon thread of this process: the
controller's northbound and the NFVI server use it.

The listening socket is bound at construction, so a taken port fails at once and port 0
gives a free port that ``port`` tells; uvicorn installs no signal handlers outside the
main thread, so the process keeps its own."""
from __future__ import annotations

import asyncio
import socket
import threading

import uvicorn


class ApiServer:
    """``app`` served on ``host``:``port`` (0: any free port) until ``shutdown``."""

    def __init__(self, app, port: int = 0, host: str = "127.0.0.1", name: str = "api"):
        # proto given: asyncio sets TCP_NODELAY on accepted connections only when their
        # proto is IPPROTO_TCP (with 0, every response waited ~40 ms for delayed ACKs)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                    access_log=False))
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
            name=name, daemon=True)

    def start(self) -> ApiServer:
        self.thread.start()
        return self

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop serving (open connections get ``timeout`` seconds) and close the socket."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.sock.close()
