"""US Core content of the demo's resources: what the legacy rows become, element by element.

Whole-demo validity (fhir.resources R4B, required bindings, profile claims) is in
test_fhir_validity.py; here each check takes its expected values from the legacy tables.
"""

from __future__ import annotations

import pytest

from support.fhir_client import get_json, search_resources
from support.us_core import DATA_ABSENT_REASON, codes, data_absent, profile_problems

LIVE = "(x.del_flg IS NULL OR x.del_flg <> 'Y') AND (p.del_flg IS NULL OR p.del_flg <> 'Y')"


def _one(raw_db, sql: str, params: tuple = ()):
    row = raw_db.execute(sql, params).fetchone()
    assert row is not None, f"the demo data has no row for: {sql}"
    return row


def _read(client, reference: str) -> dict:
    return get_json(client, f"/fhir/{reference}")


def test_profile_checks_reject_unmet_claims():
    """The claim checks used over the whole demo really fail on resources that do not meet a profile."""
    encounter = {
        "resourceType": "Encounter",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]},
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/x"},
    }
    assert profile_problems(encounter) == ["us-core-encounter: type"]
    provenance = {
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"]},
        "target": [{"reference": "Encounter/x"}],
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"type": {"coding": [{"code": "author"}]}, "who": {"reference": "Practitioner/DR1"}}],
    }
    assert profile_problems(provenance) == ["us-core-provenance: agent.onBehalfOf (provenance-1)"]
    report = {
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-lab"]},
        "status": "final",
        "code": {},
        "subject": {},
        "category": [{"coding": [{"code": "LAB"}]}],
    }
    assert profile_problems(report) == ["us-core-diagnosticreport-lab: category LAB", "us-core-diagnosticreport-lab: effective[x]"]
    assert profile_problems({"meta": {"profile": ["http://example.org/other"]}}) == [
        "claims http://example.org/other, which is not a US Core profile"
    ]


def test_report_results_are_the_orders_live_results(client, raw_db):
    served = {
        (report["id"], ref["reference"].removeprefix("Observation/"))
        for report in search_resources(client, "/fhir/DiagnosticReport?_count=1000")
        for ref in report.get("result", [])
    }
    expected = set(
        raw_db.execute(f"""
        SELECT x.ord_guid, r.res_guid FROM lab_order x JOIN pt_master p ON x.pt_seq = p.pt_seq
        JOIN lab_result r ON r.ord_no = x.ord_no WHERE {LIVE} AND (r.del_flg IS NULL OR r.del_flg <> 'Y')""")
    )
    assert served == expected and len(expected) > 1000


def test_report_results_resolve_to_observations_of_its_patient(client, raw_db):
    (guid,) = _one(
        raw_db,
        f"""SELECT x.ord_guid FROM lab_order x JOIN pt_master p ON x.pt_seq = p.pt_seq
                              WHERE {LIVE} AND x.ord_stat = 'F' AND x.pt_seq > 1 ORDER BY x.ord_no LIMIT 1""",
    )
    report = _read(client, f"DiagnosticReport/{guid}")
    assert len(report["result"]) >= 3
    for ref in report["result"]:
        observation = _read(client, ref["reference"])
        assert observation["subject"] == report["subject"]
        assert observation["effectiveDateTime"] == report["effectiveDateTime"]
        assert "laboratory" in codes(observation["category"])
    assert report["issued"].endswith("Z")
    assert "L0" in report["identifier"][0]["value"]  # the accession number


@pytest.mark.parametrize(
    "resource_type,table,guid,column,junk,element",
    [
        ("DiagnosticReport", "lab_order", "ord_guid", "collect_dttm", "('', '00000000000000')", "effectiveDateTime"),
        ("Procedure", "proc_log", "proc_guid", "perf_dttm", "('', '000000000000')", "performedDateTime"),
        ("Observation", "soc_hx", "sh_guid", "rec_dttm", "('', '00000000000000')", "effectiveDateTime"),
    ],
)
def test_required_dates_the_legacy_lacks_use_data_absent_reason(client, raw_db, resource_type, table, guid, column, junk, element):
    (bad,) = _one(
        raw_db, f"SELECT x.{guid} FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.{column} IN {junk} LIMIT 1"
    )
    (good,) = _one(
        raw_db, f"SELECT x.{guid} FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.{column} NOT IN {junk} LIMIT 1"
    )
    absent = _read(client, f"{resource_type}/{bad}")
    assert element not in absent and data_absent(absent, element)
    assert absent[f"_{element}"] == {"extension": [{"url": DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    present = _read(client, f"{resource_type}/{good}")
    assert element in present and f"_{element}" not in present


def test_immunization_without_a_date_says_unknown(client, raw_db):
    (bad,) = _one(
        raw_db,
        f"SELECT x.imm_guid FROM immun x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.admin_dt IN ('', '0000-00-00') LIMIT 1",
    )
    immunization = _read(client, f"Immunization/{bad}")
    assert immunization["occurrenceString"] == "unknown" and "occurrenceDateTime" not in immunization


def test_immunization_elements(client, raw_db):
    guid, cvx, lot = _one(
        raw_db,
        f"""SELECT x.imm_guid, v.cvx_cd, x.lot_no FROM immun x JOIN pt_master p ON x.pt_seq = p.pt_seq
        JOIN vac_cd v ON v.vac_cd = x.vac_cd WHERE {LIVE} AND x.imm_stat = 'G' AND x.hist_yn = 'N' AND v.cvx_cd IS NOT NULL LIMIT 1""",
    )
    given = _read(client, f"Immunization/{guid}")
    assert given["status"] == "completed" and given["primarySource"] is True and given["lotNumber"] == lot
    assert codes(given["vaccineCode"], "http://hl7.org/fhir/sid/cvx") == {cvx}
    (refused,) = _one(
        raw_db, f"SELECT x.imm_guid FROM immun x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.imm_stat = 'R' LIMIT 1"
    )
    refused = _read(client, f"Immunization/{refused}")
    assert refused["status"] == "not-done" and codes(refused["statusReason"]) == {"PATOBJ"}
    (historical,) = _one(
        raw_db, f"SELECT x.imm_guid FROM immun x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.hist_yn = 'Y' LIMIT 1"
    )
    assert _read(client, f"Immunization/{historical}")["primarySource"] is False


def test_smoking_status_answers(client, raw_db):
    for legacy, snomed in [("N", "266919005"), ("C", "449868002"), ("", "266927001"), ("?", "266927001")]:
        (guid,) = _one(
            raw_db,
            f"SELECT x.sh_guid FROM soc_hx x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.tob_use = ? LIMIT 1",
            (legacy,),
        )
        observation = _read(client, f"Observation/{guid}")
        assert codes(observation["valueCodeableConcept"], "http://snomed.info/sct") == {snomed}, legacy


def test_medication_request_points_at_a_medication_or_carries_text(client, raw_db):
    guid, med, rxnorm = _one(
        raw_db,
        f"""SELECT x.rx_guid, x.med_cd, m.rxnorm_cd FROM rx_order x JOIN pt_master p ON x.pt_seq = p.pt_seq
        JOIN med_cd m ON m.med_cd = x.med_cd WHERE {LIVE} AND m.rxnorm_cd IS NOT NULL LIMIT 1""",
    )
    request = _read(client, f"MedicationRequest/{guid}")
    assert request["medicationReference"]["reference"] == f"Medication/{med}" and "medicationCodeableConcept" not in request
    medication = _read(client, request["medicationReference"]["reference"])
    assert codes(medication["code"], "http://www.nlm.nih.gov/research/umls/rxnorm") == {rxnorm}
    assert codes(medication["code"], "urn:fhir-facade:demo:med") == {med}  # local system of the demo-med crosswalk
    assert _read(client, request["requester"]["reference"])["resourceType"] == "Practitioner"
    guid, text = _one(
        raw_db,
        f"SELECT x.rx_guid, x.drug_txt FROM rx_order x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.med_cd IS NULL LIMIT 1",
    )
    typed = _read(client, f"MedicationRequest/{guid}")
    assert typed["medicationCodeableConcept"] == {"text": text} and "medicationReference" not in typed
    (unmapped,) = _one(raw_db, "SELECT med_cd FROM med_cd WHERE rxnorm_cd IS NULL LIMIT 1")
    assert codes(_read(client, f"Medication/{unmapped}")["code"]) == {unmapped}  # the local code only


def test_encounter_elements_and_their_references(client, raw_db):
    guid, adm, dsch, dr, dept, org, disp = _one(
        raw_db,
        f"""
        SELECT x.visit_guid, x.adm_dt, x.dsch_dt, x.attend_dr, x.dept_cd, l.org_cd, x.dsch_disp
        FROM enc_visit x JOIN pt_master p ON x.pt_seq = p.pt_seq JOIN dept_loc l ON l.dept_cd = x.dept_cd
        WHERE {LIVE} AND x.visit_type = 'I' AND x.dsch_disp = 'SNF' LIMIT 1""",
    )
    encounter = _read(client, f"Encounter/{guid}")
    assert encounter["period"]["start"].startswith(adm.replace(" ", "T"))
    assert encounter["period"]["end"].startswith(dsch.replace(" ", "T"))
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "IMP"
    assert codes(encounter["hospitalization"]["dischargeDisposition"], "http://terminology.hl7.org/CodeSystem/discharge-disposition") == {
        "snf"
    }
    assert encounter["participant"][0]["period"] == encounter["period"]
    practitioner = _read(client, encounter["participant"][0]["individual"]["reference"])
    assert practitioner["id"] == dr
    assert _read(client, encounter["location"][0]["location"]["reference"])["id"] == dept
    assert _read(client, encounter["serviceProvider"]["reference"])["id"] == org
    (open_guid,) = _one(
        raw_db,
        f"""SELECT x.visit_guid FROM enc_visit x JOIN pt_master p ON x.pt_seq = p.pt_seq
        WHERE {LIVE} AND (x.dsch_dt IS NULL OR x.dsch_dt = '') AND x.adm_dt LIKE '2%' LIMIT 1""",
    )
    ongoing = _read(client, f"Encounter/{open_guid}")
    assert ongoing["status"] == "in-progress" and "end" not in ongoing["period"]


def test_practitioner_identifiers(client, raw_db):
    for dr, npi in raw_db.execute("SELECT dr_cd, npi FROM staff"):
        practitioner = _read(client, f"Practitioner/{dr}")
        npis = [i["value"] for i in practitioner["identifier"] if i["system"] == "http://hl7.org/fhir/sid/us-npi"]
        assert npis == ([npi] if npi else [])
        assert {"system": "urn:fhir-facade:demo:staff", "value": dr, "use": "secondary"} in practitioner["identifier"]


def test_conditions_from_the_problem_list_and_visit_diagnoses(client, raw_db):
    guid, stat, dx_codes = _one(
        raw_db,
        f"""SELECT x.prob_guid, x.prob_stat, x.dx_codes FROM prob_list x JOIN pt_master p ON x.pt_seq = p.pt_seq
        WHERE {LIVE} AND x.prob_stat = 'R' AND x.dx_codes LIKE 'ICD10:%;SNOMED-CT:%' LIMIT 1""",
    )
    problem = _read(client, f"Condition/{guid}")
    assert codes(problem["clinicalStatus"]) == {"resolved"} and "abatementDateTime" in problem
    icd, snomed = dx_codes.removeprefix("ICD10:").split(";SNOMED-CT:")
    assert codes(problem["code"], "http://hl7.org/fhir/sid/icd-10-cm") == {icd}
    assert codes(problem["code"], "http://snomed.info/sct") == {snomed}
    guid, visit = _one(
        raw_db,
        f"""SELECT x.dx_guid, e.visit_guid FROM enc_dx x JOIN pt_master p ON x.pt_seq = p.pt_seq
        JOIN enc_visit e ON e.visit_no = x.visit_no WHERE {LIVE} AND e.del_flg = 'N' LIMIT 1""",
    )
    diagnosis = _read(client, f"Condition/{guid}")
    assert codes(diagnosis["category"]) == {"encounter-diagnosis"}
    assert diagnosis["encounter"] == {"reference": f"Encounter/{visit}"}


def test_allergies(client, raw_db):
    (nka,) = _one(
        raw_db, f"SELECT x.alg_guid FROM allergy x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.alg_cd = 'NKA' LIMIT 1"
    )
    assert codes(_read(client, f"AllergyIntolerance/{nka}")["code"], "http://snomed.info/sct") == {"716186003"}
    guid, text = _one(
        raw_db,
        f"""SELECT x.alg_guid, x.rxn_txt FROM allergy x JOIN pt_master p ON x.pt_seq = p.pt_seq
        WHERE {LIVE} AND x.alg_cd = 'PCN' AND x.rxn_txt IS NOT NULL AND x.sev_cd = 'SV' LIMIT 1""",
    )
    allergy = _read(client, f"AllergyIntolerance/{guid}")
    assert allergy["category"] == ["medication"]
    assert allergy["reaction"] == [{"manifestation": [{"text": text.capitalize()}], "severity": "severe"}]


def test_provenance_names_the_row_and_who_changed_it(client, raw_db):
    guid, when, user, dr, org = _one(
        raw_db,
        f"""SELECT x.rx_guid, x.upd_dttm, x.upd_user, x.ordering_dr, s.org_cd
        FROM rx_order x JOIN pt_master p ON x.pt_seq = p.pt_seq JOIN staff s ON s.dr_cd = x.ordering_dr WHERE {LIVE} LIMIT 1""",
    )
    provenance = _read(client, f"Provenance/rx-{guid}")
    assert provenance["target"] == [{"reference": f"MedicationRequest/{guid}"}]
    assert provenance["recorded"].startswith(f"{when[:4]}-")
    author, enterer = provenance["agent"]
    assert author["who"] == {"reference": f"Practitioner/{dr}"} and author["onBehalfOf"] == {"reference": f"Organization/{org}"}
    assert enterer["who"]["identifier"]["value"] == user
    assert _read(client, provenance["target"][0]["reference"])["id"] == guid
    (visit,) = _one(raw_db, f"SELECT x.visit_guid FROM enc_visit x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} LIMIT 1")
    by_org = _read(client, f"Provenance/enc-{visit}")
    assert by_org["agent"][0]["who"] == {"reference": "Organization/GMH"}
    assert _read(client, "Organization/GMH")["name"] == "GENERAL MEMORIAL HOSPITAL"
