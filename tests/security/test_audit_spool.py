"""Audit delivery "spool" (the default): a record is in its worker's spool file before the
response leaves, reaches the hash chain within the shipping interval, exactly once, even when
the worker is killed; when records cannot be spooled or shipped, responses are withheld (503)."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from facade.audit.store import AuditStore, audit_head
from facade.audit.writer import AuditUnavailable
from facade.config import ConfigError, load_settings
from facade.state import StateStore
from support.smart_tokens import TokenMint, bearer, secured_app


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


@pytest.fixture(scope="module")
def patient_id(raw_db):
    return raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' ORDER BY pt_seq LIMIT 1 OFFSET 3").fetchone()[0]


def _head(engine: sa.Engine) -> int:
    """Records in the chain, read straight from the table (no shipping first)."""
    with engine.connect() as connection:
        return connection.execute(sa.select(audit_head.c.seq)).scalar_one_or_none() or 0


def _spool_store(url: str, spool_dir: Path, **options) -> AuditStore:
    store = AuditStore(StateStore(url).engine, delivery="spool", spool_dir=str(spool_dir))
    for name, value in options.items():  # e.g. _interval: how often the shipper runs
        setattr(store.spool, name, value)
    store.create()
    return store


def _spool_lines(spool_dir: Path) -> list[bytes]:
    return [line for path in sorted(spool_dir.glob("*.spool")) for line in path.read_bytes().splitlines()]


def test_a_record_is_spooled_before_its_response_and_chained_by_the_shipper(demo_path, tmp_path, mint, patient_id):
    state = tmp_path / "state.sqlite"
    app = secured_app(demo_path, f"sqlite:///{state}", mint)  # the deployed default: delivery spool
    audit = app.extensions["fhir_facade"].audit
    assert audit.spool is not None and audit.spool.directory == Path(f"{state}-audit-spool")
    audit.spool._interval = 3600  # no shipment during the request: what is on disk is the spool's doing
    client = app.test_client()
    token = mint.token("patient/Patient.r", patient=patient_id)
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    lines = _spool_lines(audit.spool.directory)
    assert len(lines) == 1 and f"Patient/{patient_id}".encode() in lines[0]  # there before the response
    assert _head(audit.engine) == 0  # not chained yet
    mode = stat.S_IMODE(audit.spool.directory.stat().st_mode), stat.S_IMODE(next(audit.spool.directory.glob("*.spool")).stat().st_mode)
    assert mode == (0o700, 0o600)  # records name patients: owner only
    audit.flush()
    assert _head(audit.engine) == 1 and audit.verify().ok
    app.extensions["fhir_facade"].close()
    audit.close()
    assert list(audit.spool.directory.glob("*.spool")) == []  # shipped and removed at worker exit


def test_the_shipper_chains_records_on_its_own_within_its_interval(tmp_path):
    store = _spool_store(f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool", _interval=0.02)
    for n in range(30):
        assert store.append({"kind": "rest", "status": 200, "query": f"n={n}"}) is None  # no seq: not chained yet
    deadline = time.monotonic() + 5
    while _head(store.engine) < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _head(store.engine) == 30
    store.close()
    with pytest.raises(AuditUnavailable):
        store.append({"kind": "rest", "status": 200})


_KILLED_WORKER = textwrap.dedent("""
    import os, sys
    from facade.audit.store import AuditStore
    from facade.state import StateStore

    store = AuditStore(StateStore(sys.argv[1]).engine, delivery="spool", spool_dir=sys.argv[2])
    store.spool._interval = 3600
    for n in range(3):
        store.append({"kind": "rest", "status": 200, "query": f"shipped={n}"})
    store.flush()  # these three reach the chain, and the spool's offset with them
    for n in range(2):
        store.append({"kind": "rest", "status": 200, "query": f"spooled={n}"})
    spool = store.spool._spool
    os.write(spool.fd, b'{"kind":"rest","query":"cut sh')  # killed in the middle of a line
    os._exit(9)  # no atexit, no shutdown hook: the lines stay behind in the spool
""")


def test_a_killed_workers_spool_is_shipped_exactly_once_by_the_next_shipper(tmp_path):
    url, spool_dir = f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool"
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WORKER, url, str(spool_dir)],
        cwd=repo,
        check=False,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    store = _spool_store(url, spool_dir, _interval=3600)
    assert _head(store.engine) == 3  # shipped before the kill
    result = store.verify()  # ships what ended workers left: the two spooled lines, not the cut one
    assert result.ok and result.count == 5, result.problems
    queries = [r["query"] for r in store.search(limit=10)]
    assert sorted(queries) == ["shipped=0", "shipped=1", "shipped=2", "spooled=0", "spooled=1"]
    assert list(spool_dir.glob("*.spool")) == []
    assert store.verify().count == 5  # nothing shipped twice
    store.close()


def test_a_line_edited_in_the_spool_is_chained_as_evidence_and_shipping_goes_on(tmp_path):
    url, spool_dir = f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool"
    spool_dir.mkdir()
    good = b'{"client_id":"app","kind":"rest","recorded":"2026-11-24T10:00:00.000Z","status":200}'
    (spool_dir / "1-1-dead.spool").write_bytes(good + b"\nnot a record\n" + good.replace(b"200", b"404") + b"\n")
    store = _spool_store(url, spool_dir, _interval=3600)
    result = store.verify()
    assert result.ok and result.count == 3, result.problems
    oldest_first = sorted(store.search(limit=10), key=lambda r: r["seq"])
    assert [r.get("status") for r in oldest_first] == [200, None, 404]
    assert oldest_first[1]["error"] == "unreadable spool line" and oldest_first[1]["line"] == "not a record"
    from fhir.resources.R4B.auditevent import AuditEvent

    from facade.audit.auditevent import to_auditevent

    event = to_auditevent(oldest_first[1])  # as AuditEvent search shows it: a failure, not an access
    AuditEvent.model_validate(event)
    assert event["outcome"] == "8" and "not a record" in event["outcomeDesc"] and "subtype" not in event
    store.close()


def test_records_wait_in_the_spool_while_the_state_database_is_down_then_requests_are_refused(demo_path, tmp_path, mint, patient_id):
    app = secured_app(demo_path, f"sqlite:///{tmp_path / 'state.sqlite'}", mint)
    audit = app.extensions["fhir_facade"].audit
    client = app.test_client()
    token = mint.token("patient/Patient.r", patient=patient_id)
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    audit.flush()

    def down(*_args) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("the state database is unreachable"))

    audit.spool._ship, audit.spool._max_backlog = down, 2500  # bytes: a few records
    statuses = [client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code for _ in range(20)]
    served = statuses.count(200)
    assert 1 <= served < 20 and set(statuses[served:]) == {503}  # served while the backlog fits, then withheld
    refused = client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token))
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5" and patient_id.encode() not in refused.data
    audit.spool._ship = audit.ship  # the database is back: the backlog drains, requests are served
    audit.flush()
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    result = audit.verify()
    assert result.ok and result.count == 1 + served + 1
    app.extensions["fhir_facade"].close()
    audit.close()


def test_a_spool_write_that_fails_withholds_the_response_and_the_next_request_gets_a_fresh_file(
    demo_path, tmp_path, mint, patient_id, monkeypatch, caplog
):
    app = secured_app(demo_path, f"sqlite:///{tmp_path / 'state.sqlite'}", mint)
    audit = app.extensions["fhir_facade"].audit
    client = app.test_client()
    token = mint.token("patient/Patient.r", patient=patient_id)
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    first_file = audit.spool._spool.path
    real_write = os.write

    def short_write(fd: int, data: bytes) -> int:  # the disk fills in the middle of the line
        return real_write(fd, data[:10])

    monkeypatch.setattr("facade.audit.spool.os.write", short_write)
    response = client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token))
    assert response.status_code == 503 and patient_id.encode() not in response.data
    assert patient_id not in caplog.text
    monkeypatch.setattr("facade.audit.spool.os.write", real_write)
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    assert audit.spool._spool.path != first_file  # the cut line ends the old file; the next starts clean
    result = audit.verify()  # the old file is shipped (without its cut line) and removed
    assert result.ok and result.count == 2, result.problems
    assert not first_file.exists()
    app.extensions["fhir_facade"].close()
    audit.close()


def test_two_workers_spooling_at_once_keep_one_chain(tmp_path):
    """Two stores on one state database (as two gunicorn workers), threads in each, shippers running."""
    url, spool_dir = f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool"
    stores = [_spool_store(url, spool_dir, _interval=0.005) for _ in range(2)]

    def work(n: int) -> None:
        for i in range(40):
            stores[n % 2].append({"kind": "rest", "status": 200, "query": f"t{n}-{i}"})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    result = AuditStore(stores[0].engine, delivery="spool", spool_dir=str(spool_dir)).verify()
    assert result.ok and result.count == 240, result.problems


def test_a_new_spool_file_is_locked_before_another_worker_can_see_it(tmp_path, monkeypatch):
    """Another worker's shipper scanning the directory just as a worker opens its new spool file
    must not take it for a dead worker's: it would ship it empty and delete it, and the records
    then written to it were lost (or, if it still held the lock, the request was refused)."""
    url, spool_dir = f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool"
    writer, other = _spool_store(url, spool_dir), _spool_store(url, spool_dir)
    real_flock = fcntl.flock
    scanned = []

    def flock(fd: int, operation: int) -> None:
        if not scanned and threading.current_thread() is threading.main_thread():
            scanned.append(True)  # the first lock the writer takes: its new file's
            other.spool._ship_orphans()  # the other worker's scan, right then
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    writer.append({"kind": "rest", "status": 200, "query": "first"})
    monkeypatch.undo()
    assert scanned
    writer.append({"kind": "rest", "status": 200, "query": "second"})
    writer.close()
    other.close()
    result = AuditStore(writer.engine, delivery="spool", spool_dir=str(spool_dir)).verify()
    assert result.ok and result.count == 2, (result.count, result.problems)


def test_the_audit_delivery_is_configured(tmp_path):
    config = tmp_path / "facade.toml"
    config.write_text('[audit]\naudit_delivery = "commit"\naudit_spool_dir = "spool"\n')
    settings = load_settings(str(config), environ={})
    assert settings.audit_delivery == "commit" and settings.audit_spool_dir == str(tmp_path / "spool")
    assert load_settings(environ={}).audit_delivery == "spool"
    with pytest.raises(ConfigError, match="audit_delivery"):
        load_settings(environ={"FHIR_FACADE_AUDIT_DELIVERY": "later"})


def test_a_long_record_seen_half_written_is_shipped_whole_once(tmp_path):
    """A request thread's long line (a page of a thousand ids) can be visible half-written when
    the shipper reads; the shipper must stop there, ship the complete lines, and read the rest
    of that line again, whole, next time: nothing split, nothing chained twice."""
    from facade.audit.spool import AuditSpool

    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    path = spool_dir / "writer.spool"
    second = b'{"line":2,"ids":"' + b"x" * 20000 + b'"}'
    path.write_bytes(b'{"line":1}\n' + second[:9000])  # line 2 is still being written
    shipments: list[tuple[int, list[bytes]]] = []

    def ship(_name: str, offset: int, lines: list[bytes]) -> None:
        shipments.append((offset, lines))
        if len(shipments) == 1:  # meanwhile the writing thread finishes line 2 and writes line 3
            with open(path, "ab") as handle:
                handle.write(second[9000:] + b'\n{"line":3}\n')

    spool = AuditSpool(spool_dir, ship, lambda _name: 0)
    with open(path, "rb") as handle:
        offset = spool._ship_file("writer.spool", handle, 0)
    with open(path, "rb") as handle:
        offset = spool._ship_file("writer.spool", handle, offset)
    shipped = [line for _, lines in shipments for line in lines]
    assert shipped == [b'{"line":1}', second, b'{"line":3}']
    assert offset == path.stat().st_size  # the stored offset ends exactly at the last complete line
    assert [offset for offset, _ in shipments] == [11, 11 + len(second) + 1 + 11]


def test_long_records_written_while_the_shipper_runs_are_each_chained_once(tmp_path):
    """Many threads write 40 KB records while the shipper ships every millisecond."""
    url, spool_dir = f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool"
    store = _spool_store(url, spool_dir, _interval=0.001)
    ids = [f"Observation/{n:036d}" for n in range(1000)]

    def work(n: int) -> None:
        for i in range(25):
            store.append({"kind": "rest", "status": 200, "query": f"tag=t{n}x{i}", "ids": ids})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    checker = AuditStore(store.engine, delivery="spool", spool_dir=str(spool_dir))
    result = checker.verify()
    assert result.ok and result.count == 100, result.problems
    with store.engine.connect() as connection:
        kinds = connection.exec_driver_sql("SELECT kind, count(*) FROM audit_record GROUP BY kind").all()
    assert kinds == [("rest", 100)]  # no fragment of a split line
    tags = sorted(r["query"] for r in checker.search(limit=200))
    assert tags == sorted(f"tag=t{n}x{i}" for n in range(4) for i in range(25))


def test_the_backlog_limit_counts_rotated_files_too(tmp_path):
    """The state database refuses records for a long time: rotation must not hide the backlog."""
    store = _spool_store(
        f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool", _interval=3600, _rotate_bytes=2000, _max_backlog=10_000
    )

    def down(*_args) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("the state database is unreachable"))

    store.spool._ship = down
    accepted = 0
    with pytest.raises(AuditUnavailable, match="backlog is full"):
        for _ in range(1000):
            store.append({"kind": "rest", "status": 200, "query": "x" * 200})
            accepted += 1
    assert 10_000 < store.unshipped_bytes() <= 10_000 + 500  # refused once 10 KB wait, across several files
    assert len(list((tmp_path / "spool").glob("*.spool"))) >= 4
    store.spool._ship = store.ship
    store.flush()  # the database is back: everything waiting reaches the chain, and the backlog empties
    assert store.unshipped_bytes() == 0 and store.lag() == 0
    assert store.verify().count == accepted
    store.close()


def test_a_spool_file_that_cannot_be_replaced_never_writes_through_a_stale_descriptor(tmp_path, monkeypatch):
    from facade.audit import spool as spool_module

    store = _spool_store(f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool", _interval=3600, _rotate_bytes=300)
    store.append({"kind": "rest", "status": 200, "query": "x" * 400})  # rotates: the next file is opened…
    real = spool_module._Spool

    def cannot_open(directory):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(spool_module, "_Spool", cannot_open)
    store.spool._replace(store.spool._spool)  # …but no new file can be opened
    victim = tmp_path / "victim.txt"
    with open(victim, "w"):  # takes whatever descriptor number was freed
        with pytest.raises(AuditUnavailable, match="could not be opened"):
            store.append({"kind": "rest", "status": 200, "ids": ["Patient/secret"]})
    assert victim.read_text() == ""
    monkeypatch.setattr(spool_module, "_Spool", real)
    store.append({"kind": "rest", "status": 200, "query": "after"})
    assert store.verify().ok
    store.close()


def test_the_lag_is_counted_from_the_oldest_waiting_record_not_from_an_idle_spell(tmp_path):
    store = _spool_store(f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path / "spool", _interval=3600)
    store.append({"kind": "rest", "status": 200})
    store.flush()
    assert store.lag() == 0
    time.sleep(0.5)  # idle
    store.append({"kind": "rest", "status": 200})
    assert store.lag() < 0.3
    store.close()
