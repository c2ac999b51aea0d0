"""Audit: every interaction and token event is recorded in a hash chain that detects tampering,
readable as FHIR AuditEvent with user/ or system/ scopes; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
import time

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from facade.audit.store import AuditStore, audit_head, audit_record
from facade.audit.writer import AuditUnavailable
from facade.cli import main
from support.pg_demo import with_search_path
from support.smart_tokens import TokenMint, bearer, secured_app


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


@pytest.fixture(scope="module")
def app(demo_path, tmp_path_factory, mint):
    url = "sqlite:///" + str(tmp_path_factory.mktemp("audit") / "state.sqlite")
    return secured_app(demo_path, url, mint)


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def patient_id(raw_db):
    return raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' ORDER BY pt_seq LIMIT 1 OFFSET 11").fetchone()[0]


def _store(app) -> AuditStore:
    return app.extensions["fhir_facade"].audit


def test_every_interaction_is_recorded_with_who_what_outcome(app, client, mint, patient_id):
    token = mint.token(
        "launch/patient patient/Patient.rs patient/Observation.rs",
        patient=patient_id,
        client_id="growth-chart",
        fhirUser=f"Patient/{patient_id}",
    )
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    bundle = client.get("/fhir/Observation?_count=3&category=laboratory", headers=bearer(token)).get_json()
    assert client.get("/fhir/Patient/someone-else", headers=bearer(token)).status_code == 404
    assert client.get("/fhir/Observation").status_code == 401
    assert client.get("/fhir/metadata").status_code == 200  # public, not an access to data: not recorded
    unauthorized, not_found, search, read = _store(app).search(limit=4)
    assert (read["interaction"], read["resource_type"], read["status"]) == ("read", "Patient", 200)
    assert read["ids"] == [f"Patient/{patient_id}"] and read["patient"] == patient_id
    assert (read["client_id"], read["fhir_user"], read["source"]) == ("growth-chart", f"Patient/{patient_id}", "127.0.0.1")
    assert search["interaction"] == "search" and search["query"] == "_count=3&category=laboratory"
    assert search["ids"] == [f"Observation/{e['resource']['id']}" for e in bundle["entry"]]
    assert (not_found["status"], not_found["ids"]) == (404, ["Patient/someone-else"])
    assert (unauthorized["status"], unauthorized["client_id"]) == (401, None)
    assert _store(app).verify().ok


def test_token_events_join_the_chain(app):
    # An app's audit trail hears the token events of that app's authorization server.
    app.extensions["fhir_facade"].smart.emit("issue", "growth-chart", "u1", scope="patient/*.rs", jti="j1")
    [record] = _store(app).search(limit=1)
    assert (record["kind"], record["event"], record["client_id"], record["token_id"]) == ("token", "token-issue", "growth-chart", "j1")


def test_auditevents_need_user_or_system_scope_and_validate(app, client, mint, patient_id):
    from fhir.resources.R4B.auditevent import AuditEvent
    from fhir.resources.R4B.bundle import Bundle

    reviewer = mint.token("user/AuditEvent.rs", client_id="security-console")
    patient_app = mint.token("patient/AuditEvent.rs patient/*.rs", patient=patient_id)
    assert client.get("/fhir/AuditEvent", headers=bearer(patient_app)).status_code == 403
    assert client.get("/fhir/AuditEvent").status_code == 401
    for _ in range(3):
        client.get(f"/fhir/Patient/{patient_id}", headers=bearer(patient_app))
    bundle = client.get(f"/fhir/AuditEvent?patient=Patient/{patient_id}&_count=2", headers=bearer(reviewer)).get_json()
    Bundle.model_validate(bundle)
    assert bundle["entry"] and all(
        any(e.get("what", {}).get("reference") == f"Patient/{patient_id}" for e in entry["resource"]["entity"]) for entry in bundle["entry"]
    )
    first = bundle["entry"][0]["resource"]
    AuditEvent.model_validate(first)
    read = client.get(f"/fhir/AuditEvent/{first['id']}", headers=bearer(reviewer))
    assert read.status_code == 200 and read.get_json() == first
    assert client.get("/fhir/AuditEvent/99999999", headers=bearer(reviewer)).status_code == 404
    # Paging: newest first, each page strictly older than the last.
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    older = client.get(next_url.replace("http://testserver", ""), headers=bearer(reviewer)).get_json()
    assert int(older["entry"][0]["resource"]["id"]) < int(bundle["entry"][-1]["resource"]["id"])
    by_agent = client.get("/fhir/AuditEvent?agent=security-console", headers=bearer(reviewer)).get_json()
    assert by_agent["entry"] and all(
        e["resource"]["agent"][0]["who"]["identifier"]["value"] == "security-console" for e in by_agent["entry"]
    )
    assert "entry" not in client.get("/fhir/AuditEvent?date=lt2000-01-01", headers=bearer(reviewer)).get_json()
    recent = client.get("/fhir/AuditEvent?date=ge2020-01-01&_count=1", headers=bearer(reviewer)).get_json()
    assert recent["entry"]
    app.extensions["fhir_facade"].smart.emit("failure", "x", step="token", error="invalid_grant")
    token_event = _store(app).search(limit=1)[0]
    rendered = client.get(f"/fhir/AuditEvent/{token_event['seq']}", headers=bearer(reviewer)).get_json()
    AuditEvent.model_validate(rendered)
    assert (rendered["type"]["code"], rendered["outcome"], rendered["subtype"][0]["code"]) == ("110114", "4", "token-failure")
    assert client.get("/fhir/AuditEvent?date=xx", headers=bearer(reviewer)).status_code == 400
    # A forged cursor (right fingerprint, wrong position) is a 400, not a 500.
    from facade.audit.search import CATALOGUE
    from facade.search.cursor import encode_cursor
    from facade.search.parser import parse_search

    fingerprint = parse_search("AuditEvent", [], CATALOGUE).fingerprint()
    forged = client.get(f"/fhir/AuditEvent?_cursor={encode_cursor(fingerprint, ('x',))}", headers=bearer(reviewer))
    assert forged.status_code == 400


def _filled_store(url: str, n: int = 6) -> AuditStore:
    store = AuditStore(sa.create_engine(url))
    store.create()
    for i in range(n):
        store.append(
            {"kind": "rest", "interaction": "read", "resource_type": "Patient", "ids": [f"Patient/{i}"], "status": 200, "client_id": "c"}
        )
    assert store.verify().ok
    return store


def _tamper(store: AuditStore, statement: str) -> list[str]:
    with store.engine.begin() as connection:
        for part in statement.split(";"):
            connection.exec_driver_sql(part)
    return store.verify().problems


@pytest.mark.parametrize(
    ("tampering", "expected"),
    [
        ("UPDATE audit_record SET body = replace(body, 'Patient/2', 'Patient/9') WHERE seq = 3", "record 3: content"),
        ("UPDATE audit_record SET agent = 'someone' WHERE seq = 2", "record 2: indexed columns"),
        ("DELETE FROM audit_record WHERE seq = 4", "record 4 missing"),
        (
            "UPDATE audit_record SET seq = 100 WHERE seq = 2; UPDATE audit_record SET seq = 2 WHERE seq = 3; "
            "UPDATE audit_record SET seq = 3 WHERE seq = 100",
            "does not follow",
        ),
        ("DELETE FROM audit_record WHERE seq = 6", "the head says 6 records"),
    ],
)
def test_verify_detects_tampering(tmp_path, tampering, expected):
    store = _filled_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    problems = _tamper(store, tampering)
    assert any(expected in problem for problem in problems), problems


def test_audit_verify_command(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    store = _filled_store(url)
    monkeypatch.setenv("FHIR_FACADE_STATE_URL", url)
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 0 and "6 records" in result.output and "intact" in result.output
    _tamper(store, "UPDATE audit_record SET body = replace(body, '\"status\":200', '\"status\":403') WHERE seq = 5")
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1 and "record 5" in result.output


def _concurrent_appends(store: AuditStore, threads: int = 6, each: int = 25, other: AuditStore | None = None) -> None:
    """``other``: a second store (its own writer and pool, as in a second worker process) on the same database."""

    def work(n: int) -> None:
        target = other if other is not None and n % 2 else store
        for i in range(each):
            target.append({"kind": "rest", "interaction": "search", "resource_type": "Observation", "query": f"t{n}-{i}", "status": 200})

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result = store.verify()
    assert result.ok, result.problems
    assert result.count == threads * each


def test_concurrent_appends_keep_one_chain_on_sqlite(tmp_path):
    from facade.state import StateStore

    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    store = AuditStore(StateStore(url).engine)
    _concurrent_appends(store, other=AuditStore(StateStore(url).engine))  # two writers' batches interleave


def test_concurrent_requests_are_group_committed_and_the_chain_verifies(demo_path, tmp_path, mint, patient_id):
    """8 threads × 50 requests: far fewer transactions than records, one intact chain, and
    every request's record committed before its response (its seq is on the head already)."""
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    app = secured_app(demo_path, url, mint, audit_delivery="commit")
    store = _store(app)
    batches: list[int] = []
    write_batch = store.writer._write_batch

    def counting(rows: list[dict]) -> list[int]:
        batches.append(len(rows))
        return write_batch(rows)

    store.writer._write_batch = counting
    token = mint.token("user/*.rs", client_id="load")
    committed_before_response = []

    def work() -> None:
        client = app.test_client()
        for _ in range(50):
            assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
            with store.engine.connect() as connection:  # the response is out: its record must be there
                committed_before_response.append(connection.execute(sa.select(audit_head.c.seq)).scalar_one())

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(batches) == 400 and len(batches) < 400, batches  # several records per transaction
    result = store.verify()
    assert result.ok and result.count == 400, result.problems
    assert min(committed_before_response) >= 1 and max(committed_before_response) == 400
    runner = CliRunner()
    verified = runner.invoke(main, ["audit", "verify"], env={"FHIR_FACADE_STATE_URL": url})
    assert verified.exit_code == 0 and "400 records" in verified.output
    app.extensions["fhir_facade"].close()


def test_a_record_returns_only_after_its_batch_committed(tmp_path):
    """Group commit keeps synchronous durability: append blocks until the transaction is done."""
    import time

    store = AuditStore(sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    store.create()
    release = threading.Event()
    write_batch = store.write_batch

    def slow(rows: list[dict]) -> list[int]:
        release.wait(5)
        return write_batch(rows)

    store.writer._write_batch = slow
    returned = []
    appender = threading.Thread(target=lambda: returned.append(store.append({"kind": "rest", "status": 200})))
    appender.start()
    time.sleep(0.2)
    assert returned == []  # still waiting for its commit
    release.set()
    appender.join(5)
    assert returned == [1] and store.verify().count == 1


@pytest.mark.postgres
def test_state_database_on_postgresql(postgres_url, demo_path, mint):
    schema = f"fhir_facade_state_smartrs_{os.getpid()}"
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = with_search_path(postgres_url, schema)
    try:
        # Concurrent appenders on PostgreSQL keep one unbroken chain.
        store = AuditStore(sa.create_engine(url, pool_size=8))
        store.create()
        other = AuditStore(sa.create_engine(url, pool_size=8))
        _concurrent_appends(store, other=other)  # two writers (as two workers) batch into one chain
        other.engine.dispose()
        # Records go in with COPY: text that COPY escapes must come back byte for byte.
        awkward = 'name=O\\Brien\tx\ny&family=Müller "\\N" \\\\ \r end'
        store.append({"kind": "rest", "status": 200, "query": awkward})
        assert store.verify().ok and store.search(limit=1)[0]["query"] == awkward
        problems = _tamper(store, "UPDATE audit_record SET body = replace(body, '\"status\":200', '\"status\":500') WHERE seq = 7")
        assert any("content does not match" in p for p in problems)
        store.engine.dispose()
        # The app with its state on PostgreSQL: revocation list and audit trail both there.
        app = secured_app(demo_path, url, mint)
        client = app.test_client()
        pid = client.get("/fhir/Patient?_count=1", headers=bearer(mint.token("system/Patient.rs"))).get_json()["entry"][0]["resource"]["id"]
        token = mint.token("patient/Patient.r", patient=pid)
        assert client.get(f"/fhir/Patient/{pid}", headers=bearer(token)).status_code == 200
        from facade.state.tables import revoked_token

        engine = app.extensions["fhir_facade"].state_store.engine
        with engine.begin() as connection:
            connection.execute(revoked_token.insert().values(jti=mint.claims_of(token)["jti"], expires_at=2**31 - 1))
        import time

        time.sleep(1.05)
        assert client.get(f"/fhir/Patient/{pid}", headers=bearer(token)).status_code == 401
        audit = app.extensions["fhir_facade"].audit
        audit.flush()  # the app spools (the default delivery): ship before reading the table directly
        with engine.connect() as connection:
            last = orjson.loads(
                connection.execute(sa.select(audit_record.c.body).order_by(audit_record.c.seq.desc()).limit(1)).scalar_one()
            )
            head = connection.execute(sa.select(audit_head.c.seq)).scalar_one()
        assert last["status"] == 401 and head == 6 * 25 + 1 + 3
        app.extensions["fhir_facade"].close()
        audit.close()  # its shipper stops before the schema is dropped
        engine.dispose()
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_unauditable_access_is_withheld_and_logs_no_phi(demo_path, tmp_path, mint, patient_id, caplog):
    app = secured_app(demo_path, f"sqlite:///{tmp_path / 'state.sqlite'}", mint, audit_delivery="commit")
    client = app.test_client()
    token = mint.token("patient/Patient.r", patient=patient_id)
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    store = _store(app)

    def broken(rows: list[dict]) -> list[int]:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    store.writer._write_batch = broken  # the store fails: the whole batch fails, every waiter gets 503
    response = client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token))
    assert response.status_code == 503 and response.get_json()["resourceType"] == "OperationOutcome"
    assert patient_id.encode() not in response.data
    assert "audit record could not be written" in caplog.text and patient_id not in caplog.text
    store.writer._write_batch = store.write_batch  # the store recovers: so does the service
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    assert store.verify().ok and store.verify().count == 2
    app.extensions["fhir_facade"].close()


def test_a_full_audit_queue_or_a_stalled_store_is_503(demo_path, tmp_path, mint, patient_id):
    app = secured_app(demo_path, f"sqlite:///{tmp_path / 'state.sqlite'}", mint, audit_delivery="commit")
    client = app.test_client()
    token = mint.token("patient/Patient.r", patient=patient_id)
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    store = _store(app)
    writer = store.writer
    stalled, release = threading.Event(), threading.Event()

    def stall(rows: list[dict]) -> list[int]:
        stalled.set()
        release.wait(10)
        return store.write_batch(rows)

    writer._write_batch, writer._wait_timeout = stall, 0.3
    # A stalled store: the request gives up waiting for its commit and withholds the data.
    response = client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token))
    assert response.status_code == 503 and patient_id.encode() not in response.data
    assert stalled.wait(5)
    # The queue full (the writer is busy with the batch above): refused at once, not queued.
    import queue

    while True:
        try:
            writer._queue.put_nowait(object())
        except queue.Full:
            break
    response = client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    while not writer._queue.empty():  # drop the fillers before the writer sees them
        writer._queue.get_nowait()
    writer._write_batch, writer._wait_timeout = store.write_batch, 10.0
    release.set()
    assert client.get(f"/fhir/Patient/{patient_id}", headers=bearer(token)).status_code == 200
    assert store.verify().ok
    app.extensions["fhir_facade"].close()


def test_close_commits_what_is_queued_then_refuses(tmp_path):
    from facade.audit.writer import AuditUnavailable

    store = AuditStore(sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    store.create()
    appenders = [threading.Thread(target=store.append, args=({"kind": "rest", "status": 200},)) for _ in range(5)]
    for appender in appenders:
        appender.start()
    for appender in appenders:
        appender.join()
    store.writer.close()
    assert store.verify().count == 5
    with pytest.raises(AuditUnavailable):
        store.append({"kind": "rest", "status": 200})


def _rechain(store: AuditStore) -> None:
    """What someone rewriting the trail (or a shipper bug) leaves: every hash recomputed, so the
    chain itself is consistent and only the writers' numbering can tell."""
    from facade.audit.store import GENESIS, audit_head, audit_record, chain_hash

    with store.engine.begin() as connection:
        rows = connection.execute(sa.select(audit_record.c.seq, audit_record.c.body).order_by(audit_record.c.seq)).all()
        connection.execute(audit_record.delete())
        prev = GENESIS
        for seq, (_, body) in enumerate(rows, start=1):
            record = orjson.loads(body)
            digest = chain_hash(prev, seq, body)
            connection.execute(
                audit_record.insert().values(
                    seq=seq,
                    recorded=record["recorded"],
                    kind=record.get("kind", "rest"),
                    patient=record.get("patient"),
                    agent=record.get("client_id"),
                    body=body,
                    prev_hash=prev,
                    hash=digest,
                    writer=record.get("writer"),
                    wseq=record.get("wseq"),
                )
            )
            prev = digest
        connection.execute(audit_head.update().values(seq=len(rows), hash=prev))


@pytest.mark.parametrize("delivery", ["commit", "spool"])
def test_verify_reports_a_lost_and_a_repeated_record_per_writer_even_when_the_chain_is_consistent(tmp_path, delivery):
    store = AuditStore(sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"), delivery=delivery, spool_dir=str(tmp_path / "spool"))
    store.create()
    for i in range(6):
        store.append({"kind": "rest", "interaction": "read", "ids": [f"Patient/{i}"], "status": 200, "client_id": "c"})
    result = store.verify()
    assert result.ok and result.count == 6 and result.writers == 1, result.problems
    with store.engine.begin() as connection:
        copy = connection.exec_driver_sql("SELECT body FROM audit_record WHERE seq = 2").scalar_one()
        connection.exec_driver_sql("DELETE FROM audit_record WHERE seq = 4")  # a record lost
        connection.exec_driver_sql("DROP INDEX audit_record_writer_wseq")  # (the store itself refuses copies)
        connection.exec_driver_sql(
            "INSERT INTO audit_record (seq, recorded, kind, body, prev_hash, hash, writer, wseq) VALUES (99, ?, 'rest', ?, '', '', ?, ?)",
            (orjson.loads(copy)["recorded"], copy, orjson.loads(copy)["writer"], orjson.loads(copy)["wseq"]),
        )
    _rechain(store)
    result = store.verify()
    assert not result.ok and len(result.problems) == 2, result.problems
    assert "record(s) 4 never reached the chain" in result.problems[0]
    assert "record 2 chained again" in result.problems[1]
    store.close()


def test_the_store_keeps_one_copy_of_each_numbered_record(tmp_path):
    store = AuditStore(sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"), delivery="spool", spool_dir=str(tmp_path / "spool"))
    store.create()
    lines = [
        orjson.dumps({"kind": "rest", "recorded": "2026-12-01T00:00:00.000Z", "status": 200, "writer": "w1", "wseq": n}) for n in (1, 2, 3)
    ]
    store.ship("w1.spool", 10, lines[:2])
    store.ship("w1.spool", 20, lines)  # a shipment that repeats records already chained
    result = store.verify()
    assert result.ok and result.count == 3, result.problems
    with pytest.raises(sa.exc.IntegrityError):  # and the table itself refuses a copy
        with store.engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO audit_record (seq, recorded, kind, body, prev_hash, hash, writer, wseq) "
                "VALUES (50, 'x', 'rest', '{}', '', '', 'w1', 2)"
            )
    store.close()


def test_a_failed_commit_batch_leaves_no_gap_in_the_numbering(tmp_path):
    store = AuditStore(sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    store.create()
    store.append({"kind": "rest", "status": 200})
    real = store._chain

    def fail(_connection, _rows):
        raise sa.exc.OperationalError("INSERT", {}, Exception("the state database is unreachable"))

    store._chain = fail
    with pytest.raises(AuditUnavailable):
        store.append({"kind": "rest", "status": 200})
    store._chain = real
    store.append({"kind": "rest", "status": 200})
    result = store.verify()
    assert result.ok and result.count == 2, result.problems
    assert [r["wseq"] for r in sorted(store.search(), key=lambda r: r["seq"])] == [1, 2]
    store.close()


def test_a_state_database_from_before_numbering_is_upgraded_in_place(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # the audit tables as earlier releases made them
        connection.exec_driver_sql(
            "CREATE TABLE audit_record (seq INTEGER PRIMARY KEY, recorded VARCHAR(32) NOT NULL, kind VARCHAR(16) NOT NULL, "
            "patient VARCHAR(255), agent VARCHAR(255), body TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL)"
        )
        connection.exec_driver_sql("CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, hash VARCHAR(64) NOT NULL)")
        from facade.audit.store import GENESIS, chain_hash

        body = '{"kind":"rest","recorded":"2026-01-01T00:00:00.000Z","status":200}'
        digest = chain_hash(GENESIS, 1, body)
        connection.exec_driver_sql(
            "INSERT INTO audit_record VALUES (1, '2026-01-01T00:00:00.000Z', 'rest', NULL, NULL, ?, ?, ?)", (body, GENESIS, digest)
        )
        connection.exec_driver_sql("INSERT INTO audit_head VALUES (1, 1, ?)", (digest,))
    store = AuditStore(engine)
    store.append({"kind": "rest", "status": 200})
    result = store.verify()
    assert result.ok and result.count == 2 and result.writers == 1, result.problems
    store.close()


def test_a_batch_committed_whose_answer_was_lost_is_not_numbered_again(tmp_path):
    """The commit succeeded but the writer heard an error: the next batch must not reuse its
    numbers (the store would take the new records for copies and drop them)."""
    store = AuditStore(sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"))
    store.create()
    store.append({"kind": "rest", "status": 200, "query": "first"})
    real = store._chain

    def committed_then_lost(connection, rows):
        real(connection, rows)
        connection.commit()
        raise sa.exc.OperationalError("COMMIT", {}, Exception("connection lost"))

    store._chain = committed_then_lost
    with pytest.raises(AuditUnavailable):
        store.append({"kind": "rest", "status": 200, "query": "second"})  # withheld, though recorded
    store._chain = real
    store.append({"kind": "rest", "status": 200, "query": "third"})
    result = store.verify()
    assert result.ok and result.count == 3, result.problems
    assert sorted(r["query"] for r in store.search(limit=10)) == ["first", "second", "third"]
    store.close()


def test_a_number_already_used_for_other_content_stops_the_shipment_instead_of_dropping_it(tmp_path):
    from facade.audit.store import NumberingConflict

    store = AuditStore(sa.create_engine(f"sqlite:///{tmp_path / 'state.sqlite'}"), delivery="spool", spool_dir=str(tmp_path / "spool"))
    store.create()

    def line(query: str) -> bytes:
        return orjson.dumps({"kind": "rest", "recorded": "2026-12-01T00:00:00.000Z", "query": query, "writer": "w1", "wseq": 1})

    store.ship("w1.spool", 10, [line("a")])
    with pytest.raises(NumberingConflict):
        store.ship("w1.spool", 20, [line("b")])
    result = store.verify()
    assert result.ok and result.count == 1, result.problems
    store.close()


def test_verify_while_records_are_appended_reports_no_tampering(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    store = AuditStore(sa.create_engine(url))
    store.create()
    stop = threading.Event()
    failures: list[BaseException] = []

    def append() -> None:
        other = AuditStore(sa.create_engine(url))
        try:
            while not stop.is_set():
                other.append({"kind": "rest", "status": 200})
        except BaseException as error:  # reported below: a silent writer would prove nothing
            failures.append(error)
        finally:
            other.close()

    writer = threading.Thread(target=append)
    writer.start()
    try:
        # At least 15 verifications, and on until records were seen arriving between them
        # (a loaded machine may start the writer late).
        results = [store.verify()]
        deadline = time.monotonic() + 60
        while len(results) < 15 or (results[-1].count <= results[0].count and time.monotonic() < deadline and not failures):
            results.append(store.verify())
    finally:
        stop.set()
        writer.join()
    assert not failures, failures
    assert all(r.ok for r in results), [r.problems for r in results if not r.ok]
    assert results[-1].count > results[0].count
    store.close()


def test_records_put_beyond_the_head_are_reported(tmp_path):
    store = _filled_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    problems = _tamper(
        store, "INSERT INTO audit_record (seq, recorded, kind, body, prev_hash, hash) VALUES (50, 'x', 'rest', '{}', '', '')"
    )
    assert any("beyond the head" in problem for problem in problems), problems


def test_the_trail_is_reached_only_by_scopes_that_name_it_and_refuses_unknown_filters(app, client, mint, patient_id):
    everything = mint.token("user/*.rs system/*.rs")
    assert client.get("/fhir/AuditEvent", headers=bearer(everything)).status_code == 403  # `*` means clinical data
    reviewer = mint.token("user/AuditEvent.rs")
    assert client.get("/fhir/AuditEvent?_count=1", headers=bearer(reviewer)).status_code == 200
    misspelt = client.get("/fhir/AuditEvent?patinet=Patient/x", headers=bearer(reviewer))
    assert misspelt.status_code == 400 and "patinet" in misspelt.get_json()["issue"][0]["diagnostics"]


def test_included_resources_are_in_the_searchs_audit_record(app, client, mint, patient_id):
    token = mint.token("user/*.rs")
    bundle = client.get(
        f"/fhir/Patient?_id={patient_id}&_revinclude=Observation:patient&_count=1",
        headers={**bearer(token), "X-Request-ID": "with-includes"},
    ).get_json()
    returned = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"] if e["search"]["mode"] != "outcome"]
    assert len(returned) > 1 and any(item.startswith("Observation/") for item in returned)
    _store(app).flush()
    record = next(r for r in _store(app).search(limit=20) if r.get("request_id") == "with-includes")
    assert record["ids"] == returned


TERMINOLOGY = [
    ("GET", "/fhir/ConceptMap", "search", "ConceptMap"),
    ("GET", "/fhir/ConceptMap/$translate?system=x&code=y", "operation", "ConceptMap"),
    ("GET", "/fhir/CodeSystem", "search", "CodeSystem"),
    ("GET", "/fhir/CodeSystem/$lookup?system=x&code=y", "operation", "CodeSystem"),
    ("GET", "/fhir/ValueSet", "search", "ValueSet"),
    ("GET", "/fhir/ValueSet/demo-lab-tests", "read", "ValueSet"),
    ("GET", "/fhir/ValueSet/demo-lab-tests/$expand?count=1", "operation", "ValueSet"),
    ("POST", "/fhir/ValueSet/demo-lab-tests/$expand", "operation", "ValueSet"),
]


@pytest.mark.parametrize(("method", "path", "interaction", "resource_type"), TERMINOLOGY)
def test_terminology_needs_a_token_and_is_audited(app, client, mint, method, path, interaction, resource_type):
    """The terminology endpoints hold no patient data, but follow the API's rule: a valid token
    (any scope), and one audit record per request, refused or not."""
    body = {"json": {"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": 1}]}} if method == "POST" else {}
    assert client.open(path, method=method, **body).status_code == 401
    token = mint.token("user/Patient.rs", client_id="terminology-app")
    response = client.open(path, method=method, headers=bearer(token), **body)
    assert response.status_code in (200, 404), response.data  # 404: no such code, still an answer
    answered, refused = _store(app).search(limit=2)
    for record, status in ((refused, 401), (answered, response.status_code)):
        assert (record["interaction"], record["resource_type"], record["status"]) == (interaction, resource_type, status)
    assert answered["client_id"] == "terminology-app"
