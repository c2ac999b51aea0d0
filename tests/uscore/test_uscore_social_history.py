"""Occupation, pregnancy status and intent, and the Hunger Vital Sign screening form: each legacy
row becomes the Observations its answers make, with the values the row holds, and nothing is
served for a deleted row, a blank occupation or a skipped question."""

from __future__ import annotations

from uscore_profiles import profile_problems

from support.fhir_client import get_json, q, search_resources

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LIVE = "x.del_flg <> 'Y' AND p.del_flg <> 'Y'"


def _rows(raw_db, sql: str) -> list[tuple]:
    return raw_db.execute(sql).fetchall()


def _status(client, url: str) -> int:
    return client.get(url).status_code


def test_jobs_are_occupation_observations_as_typed(client, raw_db):
    rows = _rows(
        raw_db,
        f"SELECT x.emp_guid, x.occ_desc, x.ind_desc, x.start_dt, x.end_dt FROM emp_hx x JOIN pt_master p ON p.pt_seq = x.pt_seq "
        f"WHERE {LIVE} AND x.occ_desc <> '' ORDER BY x.ind_desc IS NULL, x.end_dt IS NULL, x.emp_id LIMIT 3",
    )
    with_industry, ended, *_ = rows
    for guid, occupation, industry, start, end in (with_industry, ended):
        observation = get_json(client, f"/fhir/Observation/{guid}")
        assert observation["meta"]["profile"] == [US_CORE + "us-core-observation-occupation"]
        assert profile_problems(observation, US_CORE + "us-core-observation-occupation") == []
        assert observation["code"]["coding"][0]["code"] == "11341-5"
        assert observation["valueCodeableConcept"] == {"text": occupation}  # free text: no code is invented
        assert observation["component"][0]["valueCodeableConcept"] == {"text": industry}
        assert observation["effectivePeriod"]["start"] == f"{start[:4]}-{start[4:6]}-{start[6:]}"
        assert observation["effectivePeriod"].get("end") == (f"{end[:4]}-{end[4:6]}-{end[6:]}" if end else None)
    (no_industry,) = _rows(
        raw_db,
        f"SELECT x.emp_guid FROM emp_hx x JOIN pt_master p ON p.pt_seq = x.pt_seq WHERE {LIVE} AND x.occ_desc <> '' AND x.ind_desc IS NULL LIMIT 1",
    )[0:1]
    assert "component" not in get_json(client, f"/fhir/Observation/{no_industry[0]}")
    (blank,) = _rows(raw_db, "SELECT emp_guid FROM emp_hx WHERE occ_desc = '' LIMIT 1")
    (deleted,) = _rows(raw_db, "SELECT emp_guid FROM emp_hx WHERE del_flg = 'Y' AND occ_desc <> '' LIMIT 1")
    assert _status(client, f"/fhir/Observation/{blank[0]}") == _status(client, f"/fhir/Observation/{deleted[0]}") == 404


PREGNANCY = {"Y": "77386006", "N": "60001007", "U": "UNK"}
INTENT = {"Y": "454411000124108", "N": "454401000124105", "U": "454381000124105"}


def test_ob_questions_are_pregnancy_status_and_intent(client, raw_db):
    rows = _rows(
        raw_db,
        f"SELECT x.ob_guid, x.preg_yn, x.preg_intent FROM ob_hx x JOIN pt_master p ON p.pt_seq = x.pt_seq WHERE {LIVE} ORDER BY x.ob_id",
    )
    assert {r[1] for r in rows} == {"Y", "N", "U"} and {r[2] for r in rows} == {"Y", "N", "U", None}
    picked = {(status, intent): guid for guid, status, intent in rows}
    for (status, intent), guid in picked.items():
        observation = get_json(client, f"/fhir/Observation/{guid}-status")
        assert profile_problems(observation, US_CORE + "us-core-observation-pregnancystatus") == []
        assert observation["valueCodeableConcept"]["coding"][0]["code"] == PREGNANCY[status]
        if intent is None:
            assert _status(client, f"/fhir/Observation/{guid}-intent") == 404  # not asked: no Observation
        else:
            observation = get_json(client, f"/fhir/Observation/{guid}-intent")
            assert profile_problems(observation, US_CORE + "us-core-observation-pregnancyintent") == []
            assert observation["code"]["coding"][0]["code"] == "86645-9"
            assert observation["valueCodeableConcept"]["coding"][0] == {
                "system": "http://snomed.info/sct",
                "code": INTENT[intent],
                "display": observation["valueCodeableConcept"]["coding"][0]["display"],
            }
    unknown = get_json(client, f"/fhir/Observation/{picked[('U', None)]}-status")
    assert unknown["valueCodeableConcept"]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"


ANSWERS = {"O": "LA28397-0", "S": "LA6729-3", "N": "LA28398-8", "R": "LA15775-2"}


def test_hunger_vital_sign_form_is_a_panel_of_its_answers(client, raw_db):
    rows = _rows(
        raw_db,
        f"SELECT x.hvs_guid, x.q1_ans, x.q2_ans, p.pt_guid FROM hvs_form x JOIN pt_master p ON p.pt_seq = x.pt_seq WHERE {LIVE} ORDER BY x.hvs_id",
    )
    skipped = next(r for r in rows if (r[1] is None) != (r[2] is None))
    answered = next(r for r in rows if r[1] in ("O", "S") and r[2] is not None)
    for guid, q1, q2, patient in (skipped, answered):
        panel = get_json(client, f"/fhir/Observation/{guid}-panel")
        assert profile_problems(panel, US_CORE + "us-core-observation-screening-assessment") == []
        assert [c["coding"][0]["code"] for c in panel["category"]] == ["survey", "sdoh"]
        assert panel["code"]["coding"][0]["code"] == "88121-9" and "valueCodeableConcept" not in panel
        members = [f"Observation/{guid}-q{i}" for i, answer in enumerate((q1, q2), 1) if answer]
        assert [m["reference"] for m in panel["hasMember"]] == members
        for i, answer in enumerate((q1, q2), 1):
            url = f"/fhir/Observation/{guid}-q{i}"
            if answer is None:
                assert _status(client, url) == 404
                continue
            question = get_json(client, url)
            assert profile_problems(question, US_CORE + "us-core-observation-screening-assessment") == []
            assert question["code"]["coding"][0]["code"] == ("88122-7", "88123-5")[i - 1]
            assert question["valueCodeableConcept"]["coding"][0]["code"] == ANSWERS[answer]
        served = {o["id"] for o in search_resources(client, f"/fhir/Observation?patient={patient}&code={q('http://loinc.org|88121-9')}")}
        assert f"{guid}-panel" in served
