"""_summary, _elements, _sort and _total on searches."""

from __future__ import annotations

import importlib

import pytest
from fhir.resources.R4B.bundle import Bundle

from facade.core.subsetting import SUBSETTED, element_sets
from support.fhir_client import get_json, search_ids, sql_ids

LIVE_PATIENTS = "FROM pt_master WHERE del_flg IS NULL OR del_flg <> 'Y'"


def _resources(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _subsetted(resource: dict) -> bool:
    return SUBSETTED in resource.get("meta", {}).get("tag", [])


# -- the element tables, against the R4 definitions ------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "summary", "not_summary", "mandatory"),
    [
        (
            "Patient",
            {"identifier", "name", "gender", "birthDate", "address", "active"},
            {"contact", "communication", "photo", "maritalStatus"},
            set(),
        ),
        (
            "Observation",
            {"status", "code", "subject", "effectiveDateTime", "valueQuantity", "component"},
            {"note", "referenceRange", "interpretation", "category"},
            {"status", "code"},
        ),
        (
            "MedicationRequest",
            {"status", "intent", "medicationReference", "subject", "authoredOn"},
            {"dosageInstruction", "note"},
            {"status", "intent", "subject"},
        ),
        ("Encounter", {"status", "class", "type", "subject", "participant"}, {"hospitalization", "location"}, {"status", "class"}),
    ],
)
def test_summary_and_mandatory_elements_follow_the_r4_definitions(resource_type, summary, not_summary, mandatory):
    sets = element_sets(resource_type)
    assert summary <= sets.summary and not (not_summary & sets.summary)
    assert mandatory <= sets.mandatory and not (not_summary & sets.mandatory)
    # And against the model itself, field by field.
    model = getattr(importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}"), resource_type)
    flagged = {f.alias or n for n, f in model.model_fields.items() if (f.json_schema_extra or {}).get("summary_element_property")}
    assert {k for k in sets.summary if not k.startswith("_")} == flagged


# -- _summary ---------------------------------------------------------------------------------


def test_summary_true_keeps_summary_elements_of_the_same_matches(client):
    full = _resources(get_json(client, "/fhir/Observation?category=laboratory&_count=30"))
    short = _resources(get_json(client, "/fhir/Observation?category=laboratory&_count=30&_summary=true"))
    assert [r["id"] for r in full] == [r["id"] for r in short]
    allowed = element_sets("Observation").summary | {"resourceType", "id", "meta"}
    for whole, part in zip(full, short):
        assert set(part) == set(whole) & allowed
        assert "note" not in part and "referenceRange" not in part and "code" in part and "status" in part
        assert _subsetted(part) == (set(part) != set(whole))
    assert any(_subsetted(r) for r in short)


def test_summary_text_keeps_text_id_meta_and_mandatory_elements(client):
    for resource in _resources(get_json(client, "/fhir/Observation?_count=10&_summary=text")):
        assert set(resource) == {"resourceType", "id", "meta", "status", "code"}
        assert _subsetted(resource)
    patient = _resources(get_json(client, "/fhir/Patient?_count=1&_summary=text"))[0]
    assert set(patient) == {"resourceType", "id", "meta"}


def test_summary_data_and_false_return_whole_resources(client):
    full = get_json(client, "/fhir/Patient?_count=5")
    for mode in ("data", "false"):
        bundle = get_json(client, f"/fhir/Patient?_count=5&_summary={mode}")
        assert _resources(bundle) == _resources(full)  # the demo has no narrative to drop
        Bundle.model_validate(bundle)


def test_summary_link_is_kept_when_paging(client, raw_db):
    ids = search_ids(client, "/fhir/Patient?_summary=true&_count=300")
    assert sorted(ids) == sorted(sql_ids(raw_db, f"SELECT pt_guid {LIVE_PATIENTS}"))


# -- _elements --------------------------------------------------------------------------------


def test_elements_keeps_listed_and_mandatory_elements(client):
    full = _resources(get_json(client, "/fhir/Patient?_count=20"))
    part = _resources(get_json(client, "/fhir/Patient?_count=20&_elements=gender,birthDate"))
    for whole, subset in zip(full, part):
        assert subset["id"] == whole["id"]
        assert set(subset) == {"resourceType", "id", "meta"} | ({"gender", "birthDate"} & set(whole))
        assert subset["gender"] == whole["gender"] and _subsetted(subset)
        assert subset["meta"]["lastUpdated"] == whole["meta"]["lastUpdated"]


def test_elements_names_a_choice_by_its_base_name(client):
    for resource in _resources(get_json(client, "/fhir/Observation?code=http://loinc.org|8867-4&_count=5&_elements=value")):
        assert set(resource) == {"resourceType", "id", "meta", "status", "code", "valueQuantity"}


def test_elements_leaves_included_resources_whole(client):
    bundle = get_json(client, "/fhir/Observation?_count=3&_elements=status&_include=Observation:patient")
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert included and all("name" in r and not _subsetted(r) for r in included)


@pytest.mark.parametrize(
    "query",
    ["_summary=true&_elements=gender", "_summary=false&_elements=gender", "_summary=yes", "_elements=name.family", "_elements=na%20me"],
)
def test_bad_summary_or_elements_is_400(client, query):
    response = client.get(f"/fhir/Patient?{query}")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


# -- _sort ------------------------------------------------------------------------------------


def test_sort_by_id_matches_sql_order(client, raw_db):
    ids = search_ids(client, "/fhir/Patient?_sort=_id&_count=170")
    assert ids == sql_ids(raw_db, f"SELECT pt_guid {LIVE_PATIENTS} ORDER BY pt_guid")
    assert search_ids(client, "/fhir/Patient?_sort=-_id&_count=170") == ids[::-1]


@pytest.mark.parametrize("sort", ["_lastUpdated", "-_lastUpdated"])
def test_sort_by_last_updated_ties_broken_by_id(client, raw_db, sort):
    descending = sort.startswith("-")
    expected = sql_ids(
        raw_db,
        f"SELECT pt_guid {LIVE_PATIENTS} ORDER BY upd_dttm {'DESC' if descending else 'ASC'}, pt_guid ASC",
    )
    ids = search_ids(client, f"/fhir/Patient?_sort={sort}&_count=90")
    # NULL/junk stamps aside, the order is the legacy column's then the id, over every page.
    junk = set(sql_ids(raw_db, f"SELECT pt_guid {LIVE_PATIENTS} AND (upd_dttm IS NULL OR length(upd_dttm) <> 14)"))
    assert [i for i in ids if i not in junk] == [i for i in expected if i not in junk]
    assert sorted(ids) == sorted(expected)


def test_sort_by_date_descending_over_pages(client, raw_db):
    guid = raw_db.execute(f"SELECT pt_guid {LIVE_PATIENTS} ORDER BY pt_seq LIMIT 1 OFFSET 3").fetchone()[0]
    url = f"/fhir/Observation?patient={guid}&category=laboratory&_sort=-date&_count=3"
    ids = search_ids(client, url)
    expected = sql_ids(
        raw_db,
        "SELECT r.res_guid FROM lab_result r JOIN pt_master p ON r.pt_seq = p.pt_seq WHERE p.pt_guid = ? "
        "AND (r.del_flg IS NULL OR r.del_flg <> 'Y') ORDER BY r.collect_dttm DESC, r.res_guid",
        (guid,),
    )
    assert len(expected) > 3
    junk = set(sql_ids(raw_db, "SELECT res_guid FROM lab_result WHERE collect_dttm IS NULL OR length(collect_dttm) <> 14"))
    assert [i for i in ids if i not in junk] == [i for i in expected if i not in junk]
    assert sorted(ids) == sorted(expected)


# -- _total -----------------------------------------------------------------------------------


def test_total(client, raw_db):
    expected = raw_db.execute(f"SELECT count(*) {LIVE_PATIENTS} AND sex_cd = 'F'").fetchone()[0]
    assert get_json(client, "/fhir/Patient?gender=female&_total=accurate&_count=1")["total"] == expected
    assert "total" not in get_json(client, "/fhir/Patient?gender=female&_count=1")
    assert "total" not in get_json(client, "/fhir/Patient?gender=female&_total=estimate&_count=1")
    assert "total" not in get_json(client, "/fhir/Patient?gender=female&_total=none&_count=1")
