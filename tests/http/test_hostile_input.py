"""Hostile or oversized input gets a clear 400/404, never a 500 or unbounded work."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from facade.app import create_app
from facade.config import Settings
from facade.search.cursor import encode_cursor
from facade.search.parser import MAX_CLAUSES, MAX_VALUES_PER_PARAMETER
from facade.search.request import SearchRequest
from legacy_adapters.mapping.bindings import IdTemplate
from support.pg_demo import DEMO_SCHEMA, ensure_demo_schema, with_search_path


def _fingerprint(client, path: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    from facade.search.cursor import decode_cursor

    bundle = client.get(path).get_json()
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    return decode_cursor(parse_qs(urlsplit(next_url).query)["_cursor"][0])[0]


@pytest.mark.parametrize(
    "position",
    [(), ("x",), (0,), ("a", 0, 2**63), ("a", 0, 5), ("a", 0, 1.5), (5, 0, "x"), ("a", True, "x"), ("a", 0, None)],
)
def test_forged_cursors_are_400(client, position):
    # The fingerprint is public (it is in every next link); the position must still fit the search.
    path = "/fhir/Patient?_sort=family&_count=2"
    token = encode_cursor(_fingerprint(client, path), position)
    response = client.get(f"{path}&_cursor={token}")
    assert response.status_code == 400, response.data
    assert response.get_json()["issue"][0]["code"] == "invalid"


def test_too_many_values_or_clauses_are_400_too_costly(client):
    values = ",".join(["ab"] * (MAX_VALUES_PER_PARAMETER + 1))
    response = client.post("/fhir/Patient/_search", data={"name": values})
    assert response.status_code == 400 and response.get_json()["issue"][0]["code"] == "too-costly"
    clauses = "&".join(["given=a"] * (MAX_CLAUSES + 1))
    response = client.get(f"/fhir/Patient?{clauses}")
    assert response.status_code == 400 and response.get_json()["issue"][0]["code"] == "too-costly"


def test_the_largest_allowed_or_list_runs_on_sqlite(client):
    # name spans three columns: 300 OR terms, within SQLite's expression depth.
    values = ",".join(["ab"] * MAX_VALUES_PER_PARAMETER)
    assert client.get(f"/fhir/Patient?name={values}").status_code == 200
    codes = ",".join([f"http://loinc.org|{n}-1" for n in range(MAX_VALUES_PER_PARAMETER)])
    assert client.get(f"/fhir/Observation?code={codes}").status_code == 200


def test_ids_match_exactly(client):
    pid = client.get("/fhir/Patient?_count=1").get_json()["entry"][0]["resource"]["id"]
    assert client.get(f"/fhir/Patient/{pid}").status_code == 200
    assert client.get(f"/fhir/Patient/{pid}%0A").status_code == 404
    assert client.get(f"/fhir/Patient?_id={pid}%0A").get_json().get("entry") is None
    assert client.get(f"/fhir/Observation?patient={pid}%0A").get_json().get("entry") is None


def test_integer_id_parts_accept_only_canonical_ascii_digits():
    table = sa.table("pat", sa.column("pt_seq", sa.Integer))
    template = IdTemplate("pt-{pt_seq}", lambda ref: table.c[ref])
    assert template.parse("pt-1") == [1]
    for other in ("pt-01", "pt-\u00b2", "pt-\u0661", "pt-1\n", "pt-", "pt-1x", "pt-" + "9" * 19):
        assert template.parse(other) is None, other


def test_statement_timeout_is_too_costly_not_an_outage(postgres_url):
    ensure_demo_schema(postgres_url)
    url = with_search_path(postgres_url, DEMO_SCHEMA)
    url = sa.engine.make_url(url)
    options = url.query["options"] + " -c statement_timeout=1"
    slow = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    client = create_app(Settings(auth_mode="off", database_url=slow)).test_client()
    response = client.get("/fhir/Observation?_count=1000&_sort=_lastUpdated&_total=accurate")
    assert response.status_code == 500, response.data
    assert response.get_json()["issue"][0]["code"] == "too-costly"
    assert "Retry-After" not in response.headers


def test_request_canonical_text_is_unambiguous():
    from facade.search.params import SearchClause, StringValue

    one = SearchRequest("Patient", (SearchClause("family", "string", None, (StringValue("a&given=b"),), "a&given=b"),))
    two = SearchRequest(
        "Patient",
        (
            SearchClause("family", "string", None, (StringValue("a"),), "a"),
            SearchClause("given", "string", None, (StringValue("b"),), "b"),
        ),
    )
    assert one.canonical() != two.canonical() and one.fingerprint() != two.fingerprint()
