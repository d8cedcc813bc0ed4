"""A TCP proxy on loopback between a client and a server, which a test can cut or stall.

`cut()`: the port refuses connections and every open one is closed, as when S3 is unreachable.
`stall()`: connections are accepted but nothing is forwarded, as when a request hangs mid-upload.
`restore()`: traffic flows again, on the same port.
"""

from __future__ import annotations

import socket
import threading
import time

from harness.net import free_port


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stalled = threading.Event()
        self.held = 0  # bytes received from clients while stalled
        self.restore()

    def restore(self) -> None:
        self._stalled.clear()
        if self._listener is None:
            self._listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
            threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self._close_all()

    def stall(self) -> None:
        """Hold every byte from now on; open connections are closed so the next request is held too."""
        self.held = 0
        self._stalled.set()
        self._close_all()

    def wait_held(self, timeout: float) -> bool:
        """True once a client has sent something that is being held (an upload in progress)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.held > 0:
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self.cut()

    def _close_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self._stalled.is_set():
                    if from_client:
                        self.held += len(data)
                    continue
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
