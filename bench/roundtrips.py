"""Messages sent to a networked legacy database per request, façade against floor.

    python -m bench.roundtrips --engine postgresql|mariadb [--size 200] [--show]

Over a network each message the driver writes is a round trip the request waits for, so
this count, more than CPU, separates the façade from the floor on PostgreSQL and MariaDB.
Both run in this process on the same demo load (:mod:`bench.legacy`) and reach the server
through a counting TCP forwarder: the façade's WSGI app through Flask's test client (access
control off: tokens and audit never touch the legacy database), the floor's app directly.
``--show`` prints the start of each message of one request (the demo's data only).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl

import sqlalchemy as sa

from bench import data, legacy
from bench.floor import Floor
from legacy_adapters.sources.demo.generate import DEMO_SEED

DEFAULT_PORTS = {"postgresql": 5432, "mariadb": 3306}
WORKLOADS = ("patient_read", "patient_search_name", "observation_search_lab", "observation_search_code", "patient_everything")


class CountingForwarder:
    """127.0.0.1:port -> the server; counts (and keeps the start of) each client write."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.messages: list[bytes] = []
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
                threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
                threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if count:
                    with self.lock:
                        self.messages.append(chunk[:90])
                sink.sendall(chunk)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()
        for sock in self.sockets:
            sock.close()


def _through(url: str, forwarder: CountingForwarder) -> str:
    return sa.engine.make_url(url).set(host="127.0.0.1", port=forwarder.port).render_as_string(hide_password=False)


def _facade(url: str, state_dir: str, closing: contextlib.ExitStack) -> Callable[[str], None]:
    from facade.app import build_adapter, create_app
    from facade.config import Settings
    from facade.web.state import EXTENSION

    settings = Settings(database_url=url, base_url="http://bench/fhir", auth_mode="off", state_url=f"sqlite:///{state_dir}/state.sqlite")
    adapter = build_adapter(settings)
    closing.callback(adapter.engine.dispose)
    app = create_app(settings, adapter)
    closing.callback(app.extensions[EXTENSION].close)
    client = app.test_client()

    def get(path: str) -> None:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"the façade answered {path} with {response.status_code}")

    return get


def _floor(url: str, closing: contextlib.ExitStack) -> Callable[[str], None]:
    floor = Floor(legacy.driver_args(url))
    closing.callback(lambda: floor.db().close())  # its one thread's connection

    def get(path: str) -> None:
        route, _, query = path.partition("?")
        status, _ = floor.route(route, dict(parse_qsl(query)), "http://bench/fhir")
        if not status.startswith("200"):
            raise RuntimeError(f"the floor answered {path} with {status}")

    return get


def count(engine: str, size: int, samples: int = 5, show: bool = False) -> Iterator[dict]:
    """Per workload and server: messages per request, averaged over ``samples`` URLs after one warm-up."""
    with legacy.database(engine, size, DEMO_SEED) as db, tempfile.TemporaryDirectory() as state_dir, contextlib.ExitStack() as closing:
        server = sa.engine.make_url(db.url)
        forwarder = CountingForwarder(server.host or "127.0.0.1", server.port or DEFAULT_PORTS[engine])
        closing.callback(forwarder.close)  # last, after the clients closed their connections
        url = _through(db.url, forwarder)
        servers = {"facade": _facade(url, state_dir, closing), "floor": _floor(url, closing)}
        paths = {w.name: w.paths[:samples] for w in data.workloads(db.url)}
        for name in WORKLOADS:
            figures: dict = {"workload": name}
            for side, get in servers.items():
                get(paths[name][0])  # connections opened, caches warm
                with forwarder.lock:
                    forwarder.messages.clear()
                for path in paths[name]:
                    get(path)
                figures[side] = round(len(forwarder.messages) / len(paths[name]), 1)
                if show:
                    figures[f"{side}_messages"] = list(forwarder.messages[: len(forwarder.messages) // len(paths[name])])
            yield figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.roundtrips", description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("postgresql", "mariadb"), required=True)
    parser.add_argument("--size", type=int, default=200, help="patients in the demo load (default 200)")
    parser.add_argument("--show", action="store_true", help="print the start of each message of one request")
    args = parser.parse_args(argv)
    legacy.check_service(args.engine)
    print(f"{'workload':<26} {'façade':>8} {'floor':>8}   messages to {args.engine} per request")
    for figures in count(args.engine, args.size, show=args.show):
        print(f"{figures['workload']:<26} {figures['facade']:>8} {figures['floor']:>8}")
        for side in ("facade", "floor") if args.show else ():
            for message in figures[f"{side}_messages"]:
                print(f"    {side:<7} {message!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
