"""The listening side of one emulated node: a threading HTTP server that can be taken down at
once and drops its keep-alive connections when it is (as a stopped or crashed server would)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from fmeaa.emulator.server import ROUTER, FmeRequestHandler


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    router = ROUTER

    def __init__(self, address: tuple[str, int], node: Any) -> None:
        self.node = node
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._waker, self._wake = socket.socketpair()
        self._stopping, self._stopped = threading.Event(), threading.Event()
        super().__init__(address, FmeRequestHandler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """socketserver's loop, but woken at once by `shutdown`: its own loop notices a shutdown
        only at its next poll, and every test's teardown waited that long for its nodes."""
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._waker, selectors.EVENT_READ)
                while not self._stopping.is_set():
                    for key, _ in selector.select(poll_interval):
                        if key.fileobj is self and not self._stopping.is_set():
                            # accept and dispatch, as socketserver's own loop does
                            self._handle_request_noblock()  # type: ignore[attr-defined]
                    self.service_actions()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` and wait until it has (the port is closed by `server_close`)."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake.send(b"!")
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        super().server_close()
        self._waker.close()
        self._wake.close()

    # Track live connections so a node taken "down" also drops its keep-alive connections,
    # as a crashed or stopped server would.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._open_lock:
            live = list(self._open)
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
