"""_include and _revinclude: batched per page, checked against hand-written SQL, on every page."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from facade.core.includes import MAX_REVINCLUDES_PER_PAGE
from support.demo_sql import live_patient_ids, observation_ids_of, patient_of_observations
from support.fhir_client import get_json, walk
from support.sql_statements import count_statements

STRICT = {"Prefer": "handling=strict"}


def _by_mode(bundle: dict, mode: str, resource_type: str | None = None) -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode and (resource_type is None or e["resource"]["resourceType"] == resource_type)
    ]


def test_include_patient_on_every_page_matches_sql(client, raw_db):
    pages = walk(client, "/fhir/Observation?category=laboratory&_count=40&_include=Observation:patient", on_page=Bundle.model_validate)
    checked = 0
    for bundle in pages[:5]:
        matches = _by_mode(bundle, "match")
        included = _by_mode(bundle, "include", "Patient")
        expected = live_patient_ids(raw_db, patient_of_observations(raw_db, matches))
        assert expected and sorted(included) == sorted(expected)  # each patient once
        checked += 1
    assert checked == 5
    # The next link keeps the include.
    assert "_include=Observation%3Apatient" in next(link["url"] for link in pages[0]["link"] if link["relation"] == "next")


def test_revinclude_observations_of_each_page_of_patients(client, raw_db):
    pages = walk(client, "/fhir/Patient?gender=female&_count=3&_revinclude=Observation:patient")
    for bundle in pages[:4]:
        patients = _by_mode(bundle, "match")
        included = _by_mode(bundle, "include")
        assert all(e["resource"]["resourceType"] == "Observation" for e in bundle["entry"] if e["search"]["mode"] == "include")
        assert len(included) == len(set(included))
        assert set(included) == observation_ids_of(raw_db, patients)
    Bundle.model_validate(pages[0])


def test_two_includes_to_the_same_patient_return_it_once(client, raw_db):
    url = "/fhir/Observation?category=vital-signs&_count=30&_include=Observation:patient&_include=Observation:subject"
    bundle = get_json(client, url)
    included = _by_mode(bundle, "include")
    expected = live_patient_ids(raw_db, patient_of_observations(raw_db, _by_mode(bundle, "match")))
    assert sorted(included) == sorted(expected)


def test_revinclude_is_capped_per_page_with_a_warning(client, raw_db):
    bundle = get_json(client, "/fhir/Patient?_count=100&_revinclude=Observation:patient")
    patients = _by_mode(bundle, "match")
    assert len(observation_ids_of(raw_db, patients)) > MAX_REVINCLUDES_PER_PAGE  # the test data is big enough
    included = _by_mode(bundle, "include")
    assert len(included) == MAX_REVINCLUDES_PER_PAGE
    assert set(included) <= observation_ids_of(raw_db, patients)
    outcome = bundle["entry"][-1]
    assert outcome["search"]["mode"] == "outcome"
    assert any(issue["code"] == "incomplete" and "_revinclude" in issue["diagnostics"] for issue in outcome["resource"]["issue"])


@pytest.mark.parametrize("count", [1, 50, 1000])
@pytest.mark.parametrize(
    ("path", "includes"),
    [
        ("/fhir/Observation?category=laboratory&_include=Observation:patient&_count={count}", 1),
        ("/fhir/Observation?date=ge2020&_include=Observation:patient&_include=Observation:subject&_count={count}", 2),
        ("/fhir/Patient?name=a&_revinclude=Observation:patient&_count={count}", 1),
        ("/fhir/Patient?_revinclude=Observation:patient&_revinclude=Observation:subject&_count={count}", 2),
    ],
)
def test_includes_cost_one_statement_each_per_page(client, app, path, includes, count):
    adapter = app.extensions["fhir_facade"].adapter
    adapter.bound()
    with count_statements(adapter.engine) as statements:
        bundle = get_json(client, path.format(count=count))
    assert _by_mode(bundle, "include")
    assert len(statements) == 1 + includes, statements


@pytest.mark.parametrize("count", [1, 40])
def test_include_of_a_reference_held_by_a_collection(client, app, raw_db, count):
    """A report's ``result`` Observations are lab_result rows of its order (a mapping collection):
    the page reports every one of them, in the same single statement, and one lookup fetches them."""
    adapter = app.extensions["fhir_facade"].adapter
    adapter.bound()
    url = f"/fhir/DiagnosticReport?category=LAB&_include=DiagnosticReport:result&_count={count}"
    for _ in range(3):
        with count_statements(adapter.engine) as statements:
            bundle = get_json(client, url)
        assert len(statements) == 2, statements
        reports = _by_mode(bundle, "match")
        marks = ",".join("?" for _ in reports)
        expected = {
            row[0]
            for row in raw_db.execute(
                "SELECT r.res_guid FROM lab_result r JOIN lab_order o ON r.ord_no = o.ord_no JOIN pt_master p ON r.pt_seq = p.pt_seq "
                f"WHERE o.ord_guid IN ({marks}) AND (r.del_flg IS NULL OR r.del_flg <> 'Y') AND (p.del_flg IS NULL OR p.del_flg <> 'Y')",
                reports,
            )
        }
        included = _by_mode(bundle, "include", "Observation")
        assert expected and len(included) == len(set(included)) and set(included) == expected
        url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")


def test_every_advertised_include_is_accepted_under_strict_handling(client):
    statement = get_json(client, "/fhir/metadata")
    advertised = 0
    for resource in statement["rest"][0]["resource"]:
        for parameter, values in (("_include", resource.get("searchInclude", [])), ("_revinclude", resource.get("searchRevInclude", []))):
            for value in values:
                response = client.get(f"/fhir/{resource['type']}?{parameter}={value}&_count=1", headers=STRICT)
                assert response.status_code == 200, (resource["type"], parameter, value, response.get_json())
                advertised += 1
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    assert "Observation:patient" in patient["searchRevInclude"]
    assert advertised >= 4


@pytest.mark.parametrize(
    "query",
    [
        "Observation?_include=Observation:code",  # not a reference parameter
        "Observation?_include=Patient:general-practitioner",  # not the searched type
        "Observation?_revinclude=Observation:patient",  # points at Patient, not Observation
        "Observation?_include=Observation:patient:Group",  # a target the parameter does not have
        "Observation?_include:iterate=Observation:patient",  # includes of includes are not followed
    ],
)
def test_unsupported_includes_are_reported_or_rejected(client, query):
    bundle = get_json(client, f"/fhir/{query}&_count=2")
    assert not _by_mode(bundle, "include")
    outcome = bundle["entry"][-1]
    assert outcome["search"]["mode"] == "outcome"
    assert query.split("?", 1)[1] in outcome["resource"]["issue"][0]["diagnostics"]
    response = client.get(f"/fhir/{query}&_count=2", headers=STRICT)
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query", ["_include=*", "_revinclude=*", "_include=Observation:*", "_include=Observation", "_include=a:b:c:d"])
def test_malformed_or_wildcard_includes_are_400(client, query):
    response = client.get(f"/fhir/Observation?{query}")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_at_most_ten_includes_per_request():
    from facade.errors import SearchTooBroad
    from facade.search import SearchParamDef, parse_search
    from facade.search.parser import MAX_INCLUDES

    catalogue = {f"ref{i}": SearchParamDef(f"ref{i}", "reference", target="Patient") for i in range(MAX_INCLUDES + 1)}
    catalogues = {"Observation": catalogue, "Patient": {}}
    pairs = [("_include", f"Observation:ref{i}") for i in range(MAX_INCLUDES)]
    request = parse_search("Observation", pairs + pairs, catalogue, catalogues=catalogues)  # repeats count once
    assert len(request.includes) == MAX_INCLUDES
    with pytest.raises(SearchTooBroad):
        parse_search("Observation", pairs + [("_include", f"Observation:ref{MAX_INCLUDES}")], catalogue, catalogues=catalogues)


def test_include_lookups_use_the_service_query_path(app, client):
    """Every lookup (page and includes) reaches the adapter through FhirService._query, after Access.narrow."""
    service = app.extensions["fhir_facade"].service
    seen = []
    original = service._query

    def spy(request):
        seen.append(request.resource_type)
        return original(request)

    service._query = spy
    try:
        get_json(client, "/fhir/Patient?_count=2&_revinclude=Observation:patient")
        get_json(client, "/fhir/Observation?_count=2&_include=Observation:patient")
    finally:
        del service._query
    assert seen == ["Patient", "Observation", "Observation", "Patient"]


def test_a_reference_to_any_type_can_be_included_and_revincluded():
    """Provenance.target points at any resource: declared with target Resource."""
    from facade.search import Include, ReferenceValue, SearchParamDef, parse_search

    provenance = {"target": SearchParamDef("target", "reference", target="Resource")}
    catalogues = {"Provenance": provenance, "Patient": {}, "Observation": {}}
    request = parse_search("Patient", [("_revinclude", "Provenance:target")], {}, catalogues=catalogues)
    assert request.includes == (Include("Provenance", "target", "Patient", reverse=True),)
    request = parse_search("Provenance", [("_include", "Provenance:target:Observation")], provenance, catalogues=catalogues)
    assert request.includes == (Include("Provenance", "target", "Observation"),)
    assert not parse_search("Provenance", [("_include", "Provenance:target")], provenance, catalogues=catalogues).includes
    for pairs in ([("target", "Patient/p1")], [("target:Patient", "p1")]):
        request = parse_search("Provenance", pairs, provenance, catalogues=catalogues)
        assert request.clauses[0].values[0].id == "p1"
    assert isinstance(request.clauses[0].values[0], ReferenceValue)


def test_a_reference_to_listed_types_is_advertised_and_checked(client):
    """Provenance.target names several types in the mapping: those (and only those) are accepted."""
    statement = client.get("/fhir/metadata").get_json()["rest"][0]["resource"]
    by_type = {r["type"]: r for r in statement}
    assert "Provenance:target" in by_type["Patient"].get("searchRevInclude", [])
    assert "Provenance:target" not in by_type["Location"].get("searchRevInclude", [])
    assert client.get("/fhir/Provenance?target=Location/abc").status_code == 400
    assert client.get("/fhir/Location?_revinclude=Provenance:target", headers={"Prefer": "handling=strict"}).status_code == 400
