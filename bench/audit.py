"""The audit trail under load: every answered request has exactly one record, and how fast the
shipper chains records.

    python -m bench.audit check [--delivery spool|commit] [--state sqlite|postgresql]
                                [--duration 10] [--kills 2] [--count 1000] [--threads 4]
    python -m bench.audit ship  [--state sqlite|postgresql] [--records 50000] [--ids 0]

``check`` serves the demo as deployed (``fhir-facade serve``, two workers), sends searches of
``--count`` ids per page, each tagged with a unique ``_id:not=<tag>`` that the audited query
keeps, kills a worker with SIGKILL ``--kills`` times in the middle, stops the server, and then
matches every answered tag against the trail: each must have exactly one record, and the
chain and every writer's numbering must verify. Exit status 1 when anything is off.

``ship`` measures the shipper alone: records already spooled, shipped into the state database
(SQLite file, or a fresh PostgreSQL database) as fast as it takes them; records per second.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
import sqlalchemy as sa

from bench.servers import HOST, Server, _clean_env, facade_command, free_port, mint_token

POSTGRES_ADMIN = os.environ.get("FHIR_FACADE_TEST_POSTGRES", "postgresql+psycopg2://root@127.0.0.1:5432/test")


# -- state databases ---------------------------------------------------------------------------


class StateDatabase:
    """A fresh state database for one run: a SQLite file, or a PostgreSQL database dropped after."""

    def __init__(self, kind: str, directory: Path):
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{directory / 'state.sqlite'}"
            self._name = None
        else:
            self._name = f"facade_audit_{uuid.uuid4().hex[:12]}"
            admin = sa.engine.make_url(POSTGRES_ADMIN)
            self.url = admin.set(database=self._name).render_as_string(hide_password=False)
            self._admin(f'CREATE DATABASE "{self._name}"')

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self._name:
            self._admin(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


# -- check: tagged requests, kills, one record each ----------------------------------------------


def _patient_with_many_observations(db: Path) -> str:
    import sqlite3

    from legacy_adapters.sources.demo.generate import CHRONIC_SEQ

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT pt_guid FROM pt_master WHERE pt_seq = ?", (CHRONIC_SEQ,)).fetchone()[0]


def run_check(
    *,
    db: Path,
    work_dir: Path,
    delivery: str,
    state: str,
    duration: float,
    kills: int,
    count: int,
    threads: int = 4,
    workers: int = 2,
    min_answered: int = 0,
) -> dict:
    """One tagged run; returns the report (``ok`` says whether every answered tag has one record)."""
    state_db = StateDatabase(state, work_dir)
    try:
        return _check(db, work_dir, delivery, state_db, duration, kills, count, threads, workers, min_answered)
    finally:
        state_db.drop()


def _check(
    db: Path,
    work_dir: Path,
    delivery: str,
    state_db: StateDatabase,
    duration: float,
    kills: int,
    count: int,
    threads: int,
    workers: int,
    min_answered: int = 0,
) -> dict:
    port = free_port()
    env = _clean_env(
        FHIR_FACADE_DEMO_PATH=str(db),
        FHIR_FACADE_STATE_URL=state_db.url,
        FHIR_FACADE_AUDIT_DELIVERY=delivery,
        FHIR_FACADE_BASE_URL=f"http://{HOST}:{port}/fhir",
        FHIR_FACADE_THREADS=str(threads),
        FHIR_FACADE_AUDIT_SPOOL_DIR=str(work_dir / "spool"),
        XDG_DATA_HOME=str(work_dir / "data"),
    )
    token = mint_token(env, scope="user/*.rs")
    argv = [*facade_command(), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    server = Server("façade", argv, env, port, work_dir / "facade.log", headers={"Authorization": f"Bearer {token}"})
    patient = _patient_with_many_observations(db)
    answered: list[str] = []
    failed: Counter[str] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def client(n: int) -> None:
        # A new connection per request, so both workers get requests (a kept-alive connection
        # stays with the worker that accepted it).
        i = 0
        while not stop.is_set():
            tag = f"t{n}x{i}"
            i += 1
            path = f"/fhir/Observation?patient={patient}&_count={count}&_elements=id&_id:not={tag}"
            connection = http.client.HTTPConnection(HOST, port, timeout=30)
            try:
                connection.request("GET", path, headers=server.headers)
                response = connection.getresponse()
                response.read()
                with lock:
                    if response.status == 200:
                        answered.append(tag)
                    else:
                        failed[str(response.status)] += 1
            except (OSError, http.client.HTTPException) as error:  # a killed worker's connection
                with lock:
                    failed[type(error).__name__] += 1
            finally:
                connection.close()

    killed: list[int] = []
    server.start("/fhir/metadata")
    try:
        clients = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(threads)]
        for thread in clients:
            thread.start()
        started = time.monotonic()
        for k in range(kills):  # spread over the run, never at its very end, and only once requests are being answered
            time.sleep(max(0.0, started + duration * (k + 1) / (kills + 1) - time.monotonic()))
            while len(answered) < 2 * (k + 1) and time.monotonic() < started + 3 * duration:
                time.sleep(0.05)
            pids = server.worker_pids()
            if pids:
                os.kill(pids[k % len(pids)], signal.SIGKILL)
                killed.append(pids[k % len(pids)])
        time.sleep(max(0.0, started + duration - time.monotonic()))
        # A loaded machine answers fewer pages: run on (up to three times as long) until enough were.
        while len(answered) < min_answered and time.monotonic() < started + 4 * duration:
            time.sleep(0.1)
        stop.set()
        for thread in clients:
            thread.join(60)
    finally:
        server.stop()  # SIGTERM: workers ship or commit what is pending, then exit
    return _match(state_db.url, delivery, str(work_dir / "spool"), answered, failed, killed)


def _match(state_url: str, delivery: str, spool_dir: str, answered: list[str], failed: Counter, killed: list[int]) -> dict:
    from facade.audit.store import AuditStore, audit_record
    from facade.state import StateStore

    state = StateStore(state_url)
    try:
        store = AuditStore(state.engine, delivery=delivery, spool_dir=spool_dir)
        result = store.verify()  # first ships what killed workers left in their spool files
        tags: Counter[str] = Counter()
        ids_per_record: list[int] = []
        with state.engine.connect() as connection:
            for (body,) in connection.execute(sa.select(audit_record.c.body).where(audit_record.c.kind == "rest")):
                record = orjson.loads(body)
                tag = dict(parse_qsl(record.get("query") or "")).get("_id:not")
                if tag:
                    tags[tag] += 1
                    ids_per_record.append(len(record.get("ids") or ()))
        store.close()
    finally:
        state.dispose()
    missing = [tag for tag in answered if tags[tag] == 0]
    repeated = sorted(tag for tag, n in tags.items() if n > 1)
    return {
        "delivery": delivery,
        "state": state_url.split(":", 1)[0].split("+")[0],
        "answered": len(answered),
        "not_answered": dict(failed),
        "kills": len(killed),
        "records": result.count,
        "writers": result.writers,
        "ids_per_record": max(ids_per_record, default=0),
        "answered_not_audited": missing[:20],
        "audited_twice": repeated[:20],
        "audited_not_answered": sum(1 for tag in tags if tag not in set(answered)),
        "verify": "intact" if result.ok else result.problems[:10],
        "ok": result.ok and not missing and not repeated,
    }


# -- ship: the shipper's records per second -------------------------------------------------------


def run_ship(*, state: str, records: int, ids: int, work_dir: Path) -> dict:
    from facade.audit.spool import SHIP_LINES
    from facade.audit.store import AuditStore
    from facade.state import StateStore

    state_db = StateDatabase(state, work_dir)
    try:
        store = AuditStore(StateStore(state_db.url).engine, delivery="spool", spool_dir=str(work_dir / "spool"))
        store.create()
        store.spool._interval = 3600  # shipped below, by hand, timed
        record = {
            "kind": "rest",
            "interaction": "search",
            "resource_type": "Observation",
            "status": 200,
            "client_id": "bench",
            "patient": "p",
            "query": "patient=p&code=http://loinc.org|2345-7",
            "ids": [f"Observation/{n:036d}" for n in range(ids)],
        }
        for _ in range(records):
            store.append(record)
        spool = store.spool._spool
        started = time.perf_counter()
        with open(spool.path, "rb") as handle:
            shipped = store.spool._ship_file(spool.name, handle, 0)
        elapsed = time.perf_counter() - started
        spool.shipped = shipped
        result = store.verify()
        store.close()
        return {
            "state": state,
            "records": records,
            "ids_per_record": ids,
            "batch": SHIP_LINES,
            "seconds": round(elapsed, 3),
            "records_per_second": round(records / elapsed),
            "mb_per_second": round(shipped / elapsed / 2**20, 1),
            "verify": "intact" if result.ok and result.count == records else result.problems[:5],
        }
    finally:
        state_db.drop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="tagged requests with worker kills: one record per answered request")
    check.add_argument("--delivery", choices=("spool", "commit"), default="spool")
    check.add_argument("--state", choices=("sqlite", "postgresql"), default="sqlite")
    check.add_argument("--duration", type=float, default=10)
    check.add_argument("--kills", type=int, default=2)
    check.add_argument("--count", type=int, default=1000, help="_count of each search (ids per record)")
    check.add_argument("--threads", type=int, default=4)
    check.add_argument("--patients", type=int, default=1000)
    ship = commands.add_parser("ship", help="the shipper's sustained records/s into the state database")
    ship.add_argument("--state", choices=("sqlite", "postgresql"), default="sqlite")
    ship.add_argument("--records", type=int, default=50000)
    ship.add_argument("--ids", type=int, default=0, help="ids per record (a search page's size)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fhir-facade-bench-audit-") as tmp:
        work_dir = Path(tmp)
        if args.command == "ship":
            report = run_ship(state=args.state, records=args.records, ids=args.ids, work_dir=work_dir)
            ok = report["verify"] == "intact"
        else:
            from bench import data

            db = data.ensure_database(args.patients)
            report = run_check(
                db=db,
                work_dir=work_dir,
                delivery=args.delivery,
                state=args.state,
                duration=args.duration,
                kills=args.kills,
                count=args.count,
                threads=args.threads,
            )
            ok = report["ok"]
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
