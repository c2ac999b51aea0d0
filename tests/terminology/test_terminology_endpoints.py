"""ConceptMap, $translate, CodeSystem/$lookup and ValueSet/$expand: valid R4 and true to the crosswalk files and code tables."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.conceptmap import ConceptMap
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.valueset import ValueSet

from support.fhir_client import get_json, q

DEMO_SET = Path(__file__).resolve().parents[2] / "terminology" / "crosswalks" / "demo"
ALIASES = {
    "LOINC": "http://loinc.org",
    "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ICD10": "http://hl7.org/fhir/sid/icd-10-cm",
    "SNOMED-CT": "http://snomed.info/sct",
}
SETS = {
    "demo-lab": ("lab.csv", "urn:fhir-facade:demo:lab-test"),
    "demo-med": ("med.csv", "urn:fhir-facade:demo:med"),
    "demo-problem": ("problem.csv", "urn:fhir-facade:demo:problem"),
}


def csv_rows(name: str) -> list[dict]:
    with (DEMO_SET / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def matches(parameters: dict) -> list[tuple[str, dict | None]]:
    found = []
    for parameter in parameters["parameter"]:
        if parameter["name"] == "match":
            parts = {p["name"]: p for p in parameter["part"]}
            found.append((parts["equivalence"]["valueCode"], parts.get("concept", {}).get("valueCoding")))
    return found


def result(parameters: dict) -> bool:
    return next(p["valueBoolean"] for p in parameters["parameter"] if p["name"] == "result")


def post(client, path: str, parameters: list[dict], status: int = 200) -> dict:
    body = orjson.dumps({"resourceType": "Parameters", "parameter": parameters})
    response = client.post(path, data=body, content_type="application/fhir+json")
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


@pytest.mark.parametrize("name", sorted(SETS))
def test_concept_maps_are_valid_and_hold_every_row(client, name):
    resource = get_json(client, f"/fhir/ConceptMap/{name}")
    ConceptMap.model_validate(resource)
    file, local_system = SETS[name]
    published = {
        (g["source"], g.get("target"), e["code"], t.get("code"), t["equivalence"])
        for g in resource["group"]
        for e in g["element"]
        for t in e["target"]
    }
    expected = {
        (local_system, ALIASES.get(r["target_system"]), r["local_code"], r["target_code"] or None, r["equivalence"]) for r in csv_rows(file)
    }
    assert published == expected


def test_concept_map_search(client):
    bundle = get_json(client, "/fhir/ConceptMap?target-system=" + q("http://snomed.info/sct"))
    Bundle.model_validate(bundle)
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["demo-problem"]
    assert bundle["link"] == [{"relation": "self", "url": "http://testserver/fhir/ConceptMap?target-system=" + q("http://snomed.info/sct")}]
    assert bundle["entry"][0]["fullUrl"] == "http://testserver/fhir/ConceptMap/demo-problem"
    by_url = get_json(client, "/fhir/ConceptMap?url=" + q("urn:fhir-facade:conceptmap:demo-med"))
    assert [e["resource"]["id"] for e in by_url["entry"]] == ["demo-med"]
    by_source = get_json(client, "/fhir/ConceptMap?source=" + q("urn:fhir-facade:demo:lab-test"))
    assert {e["resource"]["id"] for e in by_source["entry"]} == {"demo-lab", "demo-lab-tests"}  # the file and the code table
    assert get_json(client, "/fhir/ConceptMap?target=" + q("http://example.org/none"))["total"] == 0
    get_json(client, "/fhir/ConceptMap/no-such-map", status=404)


@pytest.mark.parametrize("name", sorted(SETS))
def test_translate_answers_match_the_crosswalk_files(client, name):
    file, local_system = SETS[name]
    rows = csv_rows(file)
    for local in sorted({r["local_code"] for r in rows}):
        mine = [r for r in rows if r["local_code"] == local]
        answer = get_json(client, f"/fhir/ConceptMap/{name}/$translate?system={q(local_system)}&code={q(local)}")
        Parameters.model_validate(answer)
        got = {(eq, (c or {}).get("system"), (c or {}).get("code")) for eq, c in matches(answer)}
        assert got == {(r["equivalence"], ALIASES.get(r["target_system"]), r["target_code"] or None) for r in mine}
        assert result(answer) == any(r["equivalence"] not in ("unmatched", "disjoint") for r in mine)


def test_translate_reverse_and_post(client):
    # Reverse: standard → local, over every crosswalk (the file and the lab code table both map GLU).
    answer = get_json(client, "/fhir/ConceptMap/$translate?system=" + q("http://loinc.org") + "&code=2345-7&reverse=true")
    assert result(answer)
    assert {(c["system"], c["code"]) for _, c in matches(answer)} == {("urn:fhir-facade:demo:lab-test", "GLU")}
    icd = [r["local_code"] for r in csv_rows("problem.csv") if r["target_code"] == "E11.9"]
    answer = post(
        client,
        "/fhir/ConceptMap/$translate",
        [
            {"name": "coding", "valueCoding": {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}},
            {"name": "reverse", "valueBoolean": True},
        ],
    )
    assert [c["code"] for _, c in matches(answer)] == icd
    forward = post(
        client,
        "/fhir/ConceptMap/demo-med/$translate",
        [
            {"name": "system", "valueUri": "urn:fhir-facade:demo:med"},
            {"name": "code", "valueCode": "100871"},
            {"name": "targetsystem", "valueUri": "http://www.nlm.nih.gov/research/umls/rxnorm"},
        ],
    )
    assert [c["code"] for _, c in matches(forward)] == ["314076"]
    # Unmapped codes answer result=false with the 'unmatched' row, not an invented code.
    unmapped = get_json(client, "/fhir/ConceptMap/demo-med/$translate?coding=" + q("urn:fhir-facade:demo:med|105118"))
    assert not result(unmapped) and matches(unmapped) == [("unmatched", None)]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("get", "/fhir/ConceptMap/$translate?code=GLU", None, 400),
        ("get", "/fhir/ConceptMap/$translate?system=x&code=y&reverse=maybe", None, 400),
        ("get", "/fhir/ConceptMap/nope/$translate?system=x&code=y", None, 404),
        ("post", "/fhir/ConceptMap/$translate", b"{not json", 400),
        ("post", "/fhir/ConceptMap/$translate", b'{"resourceType": "Patient"}', 400),
        ("get", "/fhir/CodeSystem/$lookup?system=http://loinc.org&code=2345-7", None, 404),
        ("get", "/fhir/ValueSet/$expand?url=urn:nothing", None, 404),
        ("get", "/fhir/ValueSet/demo-meds/$expand?count=-1", None, 400),
    ],
)
def test_bad_operation_requests_get_an_operation_outcome(client, method, path, body, status):
    if method == "get":
        response = client.get(path)
    else:
        response = client.post(path, data=body, content_type="application/fhir+json")
    assert response.status_code == status
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert client.post("/fhir/ConceptMap/$translate", data="system=x", content_type="application/x-www-form-urlencoded").status_code == 415


def test_code_systems_and_lookup(client, raw_db):
    bundle = get_json(client, "/fhir/CodeSystem")
    Bundle.model_validate(bundle)
    systems = {e["resource"]["url"]: e["resource"] for e in bundle["entry"]}
    for resource in systems.values():
        CodeSystem.model_validate(resource)
    # The lab code table is the complete list; problems are known only from the crosswalk file.
    lab = systems["urn:fhir-facade:demo:lab-test"]
    assert lab["content"] == "complete"
    assert [(c["code"], c.get("display")) for c in lab["concept"]] == list(
        raw_db.execute("SELECT test_cd, test_desc FROM lab_test_cd ORDER BY test_cd")
    )
    assert systems["urn:fhir-facade:demo:problem"]["content"] == "fragment"
    answer = get_json(client, "/fhir/CodeSystem/$lookup?system=" + q("urn:fhir-facade:demo:med") + "&code=102045")
    Parameters.model_validate(answer)
    display = next(p["valueString"] for p in answer["parameter"] if p["name"] == "display")
    assert display == raw_db.execute("SELECT med_desc FROM med_cd WHERE med_cd = '102045'").fetchone()[0]
    problem = post(
        client, "/fhir/CodeSystem/$lookup", [{"name": "coding", "valueCoding": {"system": "urn:fhir-facade:demo:problem", "code": "HTN2"}}]
    )
    assert {"name": "display", "valueString": "ESSENTIAL HYPERTENSION"} in problem["parameter"]
    assert get_json(client, "/fhir/CodeSystem/demo-lab-tests")["id"] == "demo-lab-tests"


def test_value_set_expand_lists_the_code_table(client, raw_db):
    expanded = get_json(client, "/fhir/ValueSet/demo-meds/$expand")
    ValueSet.model_validate(expanded)
    rows = list(raw_db.execute("SELECT med_cd, med_desc FROM med_cd ORDER BY med_cd"))
    assert [(c["code"], c["display"]) for c in expanded["expansion"]["contains"]] == rows
    assert expanded["expansion"]["total"] == len(rows)
    filtered = get_json(client, "/fhir/ValueSet/$expand?url=" + q("urn:fhir-facade:valueset:demo-meds") + "&filter=statin&count=1&offset=1")
    statins = [r for r in rows if "statin" in r[1].lower()]
    assert filtered["expansion"]["total"] == len(statins) == 2
    assert [c["code"] for c in filtered["expansion"]["contains"]] == [statins[1][0]]
    post_expanded = post(client, "/fhir/ValueSet/demo-lab-tests/$expand", [{"name": "filter", "valueString": "chol"}])
    assert {c["code"] for c in post_expanded["expansion"]["contains"]} == {"CHOL", "HDL", "LDL"}


def test_capability_statement_advertises_the_terminology_endpoints(client):
    statement = get_json(client, "/fhir/metadata")
    CapabilityStatement.model_validate(statement)
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert [o["name"] for o in resources["ConceptMap"]["operation"]] == ["translate"]
    assert [o["name"] for o in resources["CodeSystem"]["operation"]] == ["lookup"]
    assert [o["name"] for o in resources["ValueSet"]["operation"]] == ["expand"]
