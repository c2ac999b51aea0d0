"""The patient compartment is an ordinary clause, so it narrows the SQL like any search parameter."""

from __future__ import annotations

from dataclasses import replace

from facade.search.compartment import patient_compartment_clause
from facade.search.parser import parse_search


def _ids(app, resource_type, clauses):
    adapter = app.extensions["fhir_facade"].adapter
    request = parse_search(resource_type, [("_count", "1000")], adapter.search_params(resource_type))
    page = adapter.search(replace(request, clauses=tuple(clauses)))
    return {resource["id"] for resource in page.resources}


def test_observation_compartment_matches_sql(app, raw_db):
    guid = raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' ORDER BY pt_seq LIMIT 1 OFFSET 7").fetchone()[0]
    expected = {
        row[0]
        for row in raw_db.execute(
            "SELECT r.res_guid FROM lab_result r JOIN pt_master p ON r.pt_seq = p.pt_seq "
            "WHERE p.pt_guid = ? AND r.del_flg <> 'Y' AND p.del_flg <> 'Y'",
            (guid,),
        )
    }
    found = _ids(app, "Observation", [patient_compartment_clause("Observation", guid)])
    assert expected and expected <= found
    assert all(i in expected or "-" in i[36:] for i in found)  # the rest are this patient's vital-sign variants


def test_patient_compartment_is_the_patient(app, raw_db):
    guids = [row[0] for row in raw_db.execute("SELECT pt_guid FROM pt_master WHERE del_flg <> 'Y' LIMIT 2")]
    assert _ids(app, "Patient", [patient_compartment_clause("Patient", guids[0])]) == {guids[0]}
