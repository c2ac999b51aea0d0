"""Every Patient and Observation the demo produces is valid FHIR R4 (fhir.resources R4B models).

The whole demo database is walked through the HTTP API, not a sample: a mapping
change that breaks one legacy corner case (a junk date, a missing unit) fails here.
fhir.resources checks structure and datatypes; required code bindings it leaves
alone are checked here by hand.
"""

from __future__ import annotations

import re

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from support.fhir_client import walk

OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
GENDER = {"male", "female", "other", "unknown"}
DATETIME_WITH_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def resources(client, path: str):
    """Yield every resource of a search, over every page; each Bundle page is validated as R4B."""
    for bundle in walk(client, path, on_page=Bundle.model_validate):
        for entry in bundle.get("entry", []):
            yield entry["resource"]


def test_every_patient_is_valid_r4(client, raw_db):
    seen = 0
    for resource in resources(client, "/fhir/Patient?_count=1000"):
        Patient.model_validate(resource)
        assert FHIR_ID.match(resource["id"])
        assert resource["gender"] in GENDER  # US Core: required, 'unknown' when the legacy row has none
        assert resource["meta"]["lastUpdated"].endswith("Z")
        seen += 1
    (expected,) = raw_db.execute("SELECT count(*) FROM pt_master WHERE del_flg IS NULL OR del_flg <> 'Y'").fetchone()
    assert seen == expected


def _expected_observations(raw_db) -> int:
    live = "(v.del_flg IS NULL OR v.del_flg <> 'Y') AND (p.del_flg IS NULL OR p.del_flg <> 'Y')"
    labs = raw_db.execute(
        "SELECT count(*) FROM lab_result v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE " + live
    ).fetchone()[0]
    vitals = raw_db.execute(
        f"""SELECT sum((pulse IS NOT NULL) + (resp_rate IS NOT NULL) + (temp_f IS NOT NULL) + (wt_lb IS NOT NULL)
                  + (ht_in IS NOT NULL) + (spo2 IS NOT NULL) + (wt_lb IS NOT NULL AND ht_in IS NOT NULL)
                  + (bp_sys IS NOT NULL AND bp_dia IS NOT NULL))
            FROM vitals v JOIN pt_master p ON v.pt_seq = p.pt_seq WHERE {live}"""
    ).fetchone()[0]
    return labs + vitals


def test_every_observation_is_valid_r4(client, raw_db):
    seen = 0
    ids = set()
    for resource in resources(client, "/fhir/Observation?_count=1000"):
        Observation.model_validate(resource)
        assert FHIR_ID.match(resource["id"])
        assert resource["status"] in OBSERVATION_STATUS
        assert resource["subject"]["reference"].startswith("Patient/")
        assert resource["category"][0]["coding"][0]["code"] in ("laboratory", "vital-signs")
        effective = resource.get("effectiveDateTime")
        if effective is not None:  # junk legacy timestamps leave it out rather than invent one
            assert DATETIME_WITH_TIME.match(effective), effective
        ids.add(resource["id"])
        seen += 1
    assert seen == len(ids) == _expected_observations(raw_db)


@pytest.mark.parametrize(
    "path",
    ["/fhir/Patient/does-not-exist", "/fhir/Unknown", "/fhir/Patient?birthdate=notadate", "/fhir/Patient?_count=x"],
)
def test_errors_are_valid_operation_outcomes(client, path):
    response = client.get(path)
    assert response.status_code in (400, 404)
    OperationOutcome.model_validate(response.get_json())


def test_capability_statement_is_valid(client):
    CapabilityStatement.model_validate(client.get("/fhir/metadata").get_json())
