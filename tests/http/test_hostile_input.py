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


# -- client mistakes are 400/404, never 500 -----------------------------------------------------

PARAMETERS = "application/fhir+json"


def _parameters(*parameters: dict) -> str:
    import json

    return json.dumps({"resourceType": "Parameters", "parameter": list(parameters)})


@pytest.mark.parametrize(
    ("path", "parameters"),
    [
        ("/fhir/CodeSystem/$lookup", [{"name": "system", "valueUri": {"a": 1}}, {"name": "code", "valueCode": "GLU"}]),
        ("/fhir/CodeSystem/$lookup", [{"name": "system", "valueUri": "x"}, {"name": "code", "valueCode": ["GLU"]}]),
        ("/fhir/ValueSet/$expand", [{"name": "url", "valueUri": {"a": 1}}]),
        ("/fhir/ValueSet/$expand", [{"name": "url", "valueUri": 7}]),
        ("/fhir/ValueSet/demo-lab-tests/$expand", [{"name": "filter", "valueString": {"a": 1}}]),
        ("/fhir/ValueSet/demo-lab-tests/$expand", [{"name": "count", "valueInteger": True}]),
        ("/fhir/ConceptMap/$translate", [{"name": "system", "valueUri": 5}, {"name": "code", "valueCode": "GLU"}]),
        ("/fhir/ConceptMap/$translate", [{"name": "coding", "valueCoding": {"system": ["x"], "code": "GLU"}}]),
        ("/fhir/ConceptMap/$translate", [{"name": "codeableConcept", "valueCodeableConcept": {"coding": "x"}}]),
        ("/fhir/ConceptMap/$translate", [{"name": "reverse", "valueBoolean": {"a": 1}}]),
    ],
)
def test_terminology_parameters_of_the_wrong_type_are_400(client, path, parameters):
    response = client.post(path, data=_parameters(*parameters), content_type=PARAMETERS)
    assert response.status_code == 400, response.data
    assert response.get_json()["issue"][0]["code"] == "invalid"


def test_terminology_count_takes_ascii_digits_only(client):
    assert client.get("/fhir/ValueSet/demo-lab-tests/$expand?count=2").status_code == 200
    for count in ("\u0663", "1_0", " 3"):
        response = client.get("/fhir/ValueSet/demo-lab-tests/$expand", query_string={"count": count})
        assert response.status_code == 400, (count, response.data)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        _parameters({"name": "_type", "valueString": "[" * 5000}).replace('"' + "[" * 5000 + '"', "[" * 5000 + "]" * 5000),
    ],
)
def test_deeply_nested_json_is_400(client, body):
    pid = client.get("/fhir/Patient?_count=1").get_json()["entry"][0]["resource"]["id"]
    for path in (f"/fhir/Patient/{pid}/$everything", "/fhir/ConceptMap/$translate"):
        response = client.post(path, data=body, content_type=PARAMETERS)
        assert response.status_code == 400, (path, response.data[:200])
        assert "not valid JSON" in response.get_json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("count", ["\u0663", "\u0969", "\uff13", "\u00b3", "1_0", "+3", " 3"])
def test_count_takes_ascii_digits_only(client, count):
    pid = client.get("/fhir/Patient?_count=1").get_json()["entry"][0]["resource"]["id"]
    for path in ("/fhir/Observation", f"/fhir/Patient/{pid}/$everything"):
        response = client.get(path, query_string={"_count": count})
        assert response.status_code == 400, (path, count, response.data)
        assert response.get_json()["issue"][0]["expression"] == ["_count"]


@pytest.mark.parametrize("value", ["2020-02-30", "2020-13", "2020-01-01T24:00", "2020-01-01T10:00:00+25:00", "0000", "9999"])
def test_date_errors_are_in_plain_words(client, value):
    response = client.get("/fhir/Patient", query_string={"birthdate": value})
    assert response.status_code == 400, response.data
    text = response.get_json()["issue"][0]["diagnostics"]
    assert "is not a date that exists" in text
    for python in ("timedelta", "out of range", "must be in", "year 10000"):
        assert python not in text, text


def test_nul_in_an_id_or_a_cursor_on_postgresql_is_404_or_400(postgres_url):
    from urllib.parse import parse_qs, urlsplit

    from facade.search.cursor import decode_cursor

    ensure_demo_schema(postgres_url)
    client = create_app(Settings(auth_mode="off", database_url=with_search_path(postgres_url, DEMO_SCHEMA))).test_client()
    for path in ("/fhir/Patient/abc%00def", "/fhir/Patient/abc%00def/$everything", "/fhir/Observation/x%00"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.data)
    path = "/fhir/Patient?_sort=family&_count=2"
    next_url = next(link["url"] for link in client.get(path).get_json()["link"] if link["relation"] == "next")
    fingerprint, position, _ = decode_cursor(parse_qs(urlsplit(next_url).query)["_cursor"][0])
    forged = tuple(v + "\x00" if isinstance(v, str) else v for v in position)
    response = client.get(f"{path}&_cursor={encode_cursor(fingerprint, forged)}")
    assert response.status_code == 400, response.data
    assert response.get_json()["issue"][0]["expression"] == ["_cursor"]
