"""Request ids, conditional reads (ETag, Last-Modified, 304) and compression."""

from __future__ import annotations

import gzip
import logging

import orjson
import pytest

from facade.operations import logs


@pytest.fixture(scope="module")
def patient(raw_db):
    return raw_db.execute(
        "SELECT p.pt_guid FROM pt_master p WHERE p.del_flg <> 'Y' AND p.merged_to_seq IS NULL AND "
        "(SELECT count(*) FROM lab_result r WHERE r.pt_seq = p.pt_seq) > 60 ORDER BY p.pt_seq LIMIT 1"
    ).fetchone()[0]


def test_a_plain_request_id_is_kept_and_anything_else_replaced(client):
    assert client.get("/fhir/metadata", headers={"X-Request-ID": "job-42.step:7"}).headers["X-Request-ID"] == "job-42.step:7"
    for hostile in ("has space", "a" * 200, "x;y", "naïve", "Patient/123?name=smith"):
        echoed = client.get("/fhir/metadata", headers={"X-Request-ID": hostile}).headers["X-Request-ID"]
        assert echoed != hostile and len(echoed) == 24 and echoed.isalnum()
    first, second = (client.get("/fhir/metadata").headers["X-Request-ID"] for _ in range(2))
    assert first != second  # generated per request
    assert client.get("/fhir/Nothing").headers["X-Request-ID"]  # errors carry it too


def test_the_request_id_is_on_every_log_line_and_in_the_audit_record(app, client, caplog):
    caplog.handler.addFilter(logs.RequestIdFilter())
    with caplog.at_level(logging.INFO):
        response = client.get("/fhir/Patient?_count=1", headers={"X-Request-ID": "trace-1"})
        logging.getLogger("facade.test").info("outside a request")
    assert response.status_code == 200
    assert any(getattr(record, "request_id", None) == "-" for record in caplog.records)
    audit = app.extensions["fhir_facade"].audit
    audit.flush()
    # Other apps of this test session share the chain and ship on their own: look the record up.
    record = next(r for r in audit.search(limit=200) if r.get("request_id") == "trace-1")
    assert (record["interaction"], record["resource_type"]) == ("search", "Patient")


def test_json_log_lines_carry_the_request_id_and_no_more_than_the_text(caplog):
    token = logs.request_id.set("abc123")
    try:
        record = logging.LogRecord(
            "facade.web", logging.WARNING, __file__, 1, "legacy database unavailable: %s", ("OperationalError",), None
        )
        logs.RequestIdFilter().filter(record)
        line = orjson.loads(logs.JsonFormatter().format(record))
    finally:
        logs.request_id.reset(token)
    assert line["request_id"] == "abc123" and line["message"] == "legacy database unavailable: OperationalError"
    assert set(line) == {"time", "level", "logger", "request_id", "message"}


def test_a_read_has_an_etag_and_last_modified_and_answers_304_when_unchanged(client, patient):
    first = client.get(f"/fhir/Patient/{patient}")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('W/"') and modified.endswith("GMT")
    again = client.get(f"/fhir/Patient/{patient}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert client.get(f"/fhir/Patient/{patient}", headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(f"/fhir/Patient/{patient}", headers={"If-None-Match": 'W/"other"'}).status_code == 200
    assert client.get(f"/fhir/Patient/{patient}", headers={"If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"}).status_code == 200
    # If-None-Match decides alone when both are sent (RFC 9110 §13.2.2)
    assert client.get(f"/fhir/Patient/{patient}", headers={"If-None-Match": 'W/"other"', "If-Modified-Since": modified}).status_code == 200


def test_a_search_page_has_an_etag_too(client, patient):
    page = client.get(f"/fhir/Observation?patient={patient}&_count=5")
    assert client.get(f"/fhir/Observation?patient={patient}&_count=5", headers={"If-None-Match": page.headers["ETag"]}).status_code == 304


def test_a_304_is_audited_as_the_read_it_answered(app, client, patient):
    etag = client.get(f"/fhir/Patient/{patient}").headers["ETag"]
    assert client.get(f"/fhir/Patient/{patient}", headers={"If-None-Match": etag, "X-Request-ID": "etag-read"}).status_code == 304
    audit = app.extensions["fhir_facade"].audit
    audit.flush()
    record = next(r for r in audit.search(limit=20) if r.get("request_id") == "etag-read")
    assert (record["interaction"], record["status"], record["ids"]) == ("read", 304, [f"Patient/{patient}"])


def test_a_page_worth_it_is_gzipped_when_the_client_accepts_it(client, patient):
    url = f"/fhir/Observation?patient={patient}&category=laboratory&_count=50"
    plain = client.get(url)
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers and packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) * 4 < len(plain.data)
    assert "Accept-Encoding" in packed.headers["Vary"] and "Accept-Encoding" in plain.headers["Vary"]
    assert "Content-Encoding" not in client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"}).headers


def test_small_answers_are_sent_as_they_are(client):
    response = client.get("/fhir/Nothing", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 404 and "Content-Encoding" not in response.headers


def test_an_answer_withheld_for_its_audit_record_still_carries_its_request_id(app, client, monkeypatch):
    audit = app.extensions["fhir_facade"].audit

    def broken(_record):
        raise RuntimeError("the state database is full")

    monkeypatch.setattr(audit, "append", broken)
    response = client.get("/fhir/Patient?_count=1", headers={"X-Request-ID": "withheld-1"})
    assert response.status_code == 503 and response.headers["X-Request-ID"] == "withheld-1"
    monkeypatch.undo()
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fhir_facade_requests_total{interaction="search",resource_type="Patient",status="503"}' in text


def test_last_modified_is_an_imf_fixdate():
    from datetime import UTC, datetime, timedelta, timezone

    from werkzeug.http import http_date as reference

    from facade.web.rendering import http_date

    start = datetime(1999, 12, 31, 23, 59, 7, tzinfo=UTC)
    for days in range(0, 400, 13):  # every weekday and month
        moment = start + timedelta(days=days, seconds=days * 97)
        assert http_date(moment) == reference(moment)
        assert http_date(moment.replace(tzinfo=None)) == reference(moment)  # naive: UTC
        elsewhere = moment.astimezone(timezone(timedelta(hours=-5)))
        assert http_date(elsewhere) == reference(moment)


def test_vary_names_each_header_once(app):
    from flask import Response

    from facade.web.rendering import add_vary

    response = Response()
    add_vary(response, "Accept-Encoding")
    add_vary(response, "authorization")
    add_vary(response, "Authorization")  # already named, in another case
    add_vary(response, "accept-encoding")
    assert response.headers.getlist("Vary") == ["Accept-Encoding, authorization"]


def test_a_read_with_a_token_varies_by_token_and_encoding(client, patient):
    response = client.get(f"/fhir/Patient/{patient}", headers={"Authorization": "Bearer x"})  # this server checks no token
    assert response.status_code == 200
    assert response.headers.getlist("Vary") == ["Authorization, Accept-Encoding"]


def test_hooks_are_checked_for_coroutines_once(app, client, monkeypatch):
    from flask import Flask

    checked: list = []
    original = Flask.ensure_sync
    monkeypatch.setattr(Flask, "ensure_sync", lambda self, func: checked.append(func) or original(self, func))
    app._synced.clear()
    client.get("/fhir/metadata")
    first = len(checked)
    client.get("/fhir/metadata")
    assert first > 0 and len(checked) == first
