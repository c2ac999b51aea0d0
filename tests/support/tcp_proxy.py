"""A tiny thread-based TCP forwarder on 127.0.0.1, to cut a client off from its server on demand.

``stop()`` closes the listening socket *and* every live connection, as a crashed
or unreachable database would; ``start()`` again listens on the same port.
``blackhole()`` is a network partition instead: nothing is forwarded any more, new
connections are accepted and left unanswered, and no socket is closed.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int = 0):
        self.target = (target_host, target_port)
        self.port = port  # 0: pick a free port on first start, then keep it
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor: threading.Thread | None = None
        self._holding = threading.Event()
        self.accepted = 0

    def blackhole(self) -> None:
        """From now on forward nothing and answer no one, but keep every socket open."""
        self._holding.set()

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> TcpProxy:
        if self._listener is not None:
            raise RuntimeError("proxy already running")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        self.port = listener.getsockname()[1]
        self._stopping = threading.Event()
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept_loop, args=(listener, self._stopping), daemon=True, name=f"tcp-proxy-{self.port}"
        )
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every connection; returns once all threads are gone."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        if self._acceptor is not None:  # first, so no connection is added from here on
            self._acceptor.join(timeout=5)
        self._holding.clear()
        listener.close()  # new connections are refused from here on
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:  # wakes the pumps blocked in recv/select
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = [t for t in self._threads if t.is_alive()]
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------
    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"tcp-proxy-{self.port}")
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _release(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                if sock in self._sockets:
                    self._sockets.discard(sock)
                    sock.close()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _accept_loop(self, listener: socket.socket, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], 0.05)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # listener closed under us
                return
            self._track(client)
            if stopping.is_set():
                return  # stop() closes it
            if self._holding.is_set():
                continue  # accepted, never answered (stop() closes it)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
                self._release(client)
                continue
            upstream.settimeout(None)
            self._track(upstream)
            self.accepted += 1
            pumps_left = [2]  # the second pump to finish closes both sockets
            self._spawn(self._pump, client, upstream, stopping, pumps_left)
            self._spawn(self._pump, upstream, client, stopping, pumps_left)

    def _pump(self, source: socket.socket, sink: socket.socket, stopping: threading.Event, pumps_left: list[int]) -> None:
        try:
            while not stopping.is_set():
                data = source.recv(65536)
                if not data:
                    break
                while self._holding.is_set() and not stopping.is_set():
                    time.sleep(0.05)  # partitioned: the bytes go nowhere, the sockets stay open
                sink.sendall(data)
        except OSError:
            pass
        finally:  # one side gone: tell the other, as a real connection loss would
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                pumps_left[0] -= 1
                last = pumps_left[0] == 0
            if last:
                self._release(source, sink)
