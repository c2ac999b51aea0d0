"""What the legacy rows become under the US Core profiles the demo claims: race, ethnicity and
sex at birth from the registration screen, printed reference ranges, every vital sign with its
own profile. Expected values come from the legacy tables, by hand-written SQL."""

from __future__ import annotations

import pytest

from legacy_adapters.mapping.ranges import parse_range
from support.fhir_client import get_json, q, search_resources

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LIVE = "(x.del_flg IS NULL OR x.del_flg <> 'Y') AND (p.del_flg IS NULL OR p.del_flg <> 'Y')"
CDC = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"


def _extension(patient: dict, name: str) -> dict | None:
    return next((e for e in patient.get("extension", []) if e["url"] == US_CORE + name), None)


def _part(extension: dict, url: str) -> dict:
    return next(e for e in extension["extension"] if e["url"] == url)


@pytest.mark.parametrize(
    "race,system,code",
    [
        ("W", CDC, "2106-3"),
        ("B", CDC, "2054-5"),
        ("A", CDC, "2028-9"),
        ("O", CDC, "2131-1"),
        ("U", NULL_FLAVOR, "UNK"),
        ("D", NULL_FLAVOR, "ASKU"),
    ],
)
def test_race_from_the_registration_pick_list(client, raw_db, race, system, code):
    (guid,) = raw_db.execute("SELECT pt_guid FROM pt_master WHERE race_cd = ? AND del_flg = 'N' LIMIT 1", (race,)).fetchone()
    patient = get_json(client, f"/fhir/Patient/{guid}")
    assert US_CORE + "us-core-patient" in patient["meta"]["profile"]
    extension = _extension(patient, "us-core-race")
    coding = _part(extension, "ombCategory")["valueCoding"]
    assert (coding["system"], coding["code"]) == (system, code)
    assert _part(extension, "text")["valueString"] == coding["display"]


def test_ethnicity_and_sex_at_birth(client, raw_db):
    for ethnic, code in [("H", "2135-2"), ("N", "2186-5"), ("D", "ASKU")]:
        guid, birth = raw_db.execute(
            "SELECT pt_guid, sex_birth FROM pt_master WHERE ethnic_cd = ? AND sex_birth = 'F' AND del_flg = 'N' LIMIT 1", (ethnic,)
        ).fetchone()
        patient = get_json(client, f"/fhir/Patient/{guid}")
        assert _part(_extension(patient, "us-core-ethnicity"), "ombCategory")["valueCoding"]["code"] == code
        assert _extension(patient, "us-core-birthsex")["valueCode"] == birth
    (unknown,) = raw_db.execute("SELECT pt_guid FROM pt_master WHERE sex_birth = 'U' AND del_flg = 'N' LIMIT 1").fetchone()
    assert _extension(get_json(client, f"/fhir/Patient/{unknown}"), "us-core-birthsex")["valueCode"] == "UNK"


def test_patients_without_the_data_carry_no_extension(client, raw_db):
    (guid,) = raw_db.execute(
        "SELECT pt_guid FROM pt_master WHERE race_cd IS NULL AND ethnic_cd IS NULL AND sex_birth IS NULL AND del_flg = 'N' LIMIT 1"
    ).fetchone()
    patient = get_json(client, f"/fhir/Patient/{guid}")
    assert "extension" not in patient and US_CORE + "us-core-patient" in patient["meta"]["profile"]


def test_printed_reference_ranges_become_low_high_and_keep_their_text(client, raw_db):
    rows = [
        row
        for test in ("HGBA1C", "CHOL", "HDL", "UDS")
        for row in raw_db.execute(
            f"""SELECT x.res_guid, x.ref_rng FROM lab_result x JOIN pt_master p ON x.pt_seq = p.pt_seq
            WHERE {LIVE} AND x.test_cd = ? AND (x.result_units IS NOT NULL OR x.test_cd = 'UDS') AND x.ref_rng IS NOT NULL
            ORDER BY x.res_id LIMIT 20""",
            (test,),
        )
    ]
    kinds = set()
    for guid, printed in rows:
        (item,) = get_json(client, f"/fhir/Observation/{guid}")["referenceRange"]
        assert item["text"] == printed.strip()
        expected = parse_range(printed)
        assert {k: v["value"] for k, v in item.items() if k != "text"} == {k: v["value"] for k, v in expected.items() if k != "text"}
        for bound in ("low", "high"):
            if bound in item:  # the result's unit, through the demo's unit table to UCUM
                assert item[bound]["system"] == "http://unitsofmeasure.org" and item[bound]["code"] in ("%", "mg/dL")
        kinds.add(tuple(sorted(item)))
    assert kinds == {("high", "low", "text"), ("high", "text"), ("low", "text"), ("text",)}
    assert get_json(client, f"/fhir/Observation/{rows[0][0]}")["meta"]["profile"] == [
        US_CORE + "us-core-observation-lab",
        US_CORE + "us-core-observation-clinical-result",
    ]


VITALS = {
    "pulse": "us-core-heart-rate",
    "resp": "us-core-respiratory-rate",
    "temp": "us-core-body-temperature",
    "weight": "us-core-body-weight",
    "height": "us-core-body-height",
    "spo2": "us-core-pulse-oximetry",
    "bmi": "us-core-bmi",
    "bp": "us-core-blood-pressure",
}


def test_every_vital_sign_claims_its_own_profile(client, raw_db):
    (guid,) = raw_db.execute(
        f"""SELECT x.vs_guid FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.pulse IS NOT NULL AND x.resp_rate IS NOT NULL
        AND x.temp_f IS NOT NULL AND x.wt_lb IS NOT NULL AND x.ht_in IS NOT NULL AND x.spo2 IS NOT NULL AND x.bp_sys IS NOT NULL LIMIT 1"""
    ).fetchone()
    for variant, profile in VITALS.items():
        assert get_json(client, f"/fhir/Observation/{guid}-{variant}")["meta"]["profile"] == [US_CORE + profile]


def test_pulse_oximetry_carries_both_codes_and_either_finds_it(client, raw_db):
    (patient,) = raw_db.execute(
        f"SELECT p.pt_guid FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.spo2 IS NOT NULL LIMIT 1"
    ).fetchone()
    by_one = search_resources(client, f"/fhir/Observation?patient={patient}&code={q('http://loinc.org|59408-5')}")
    by_other = search_resources(client, f"/fhir/Observation?patient={patient}&code={q('http://loinc.org|2708-6')}")
    assert [r["id"] for r in by_one] == [r["id"] for r in by_other] and by_one
    for observation in by_one:
        assert {c["code"] for c in observation["code"]["coding"]} == {"59408-5", "2708-6"}


def test_head_circumference_is_for_infants(client, raw_db):
    rows = raw_db.execute(
        f"""SELECT x.vs_guid, x.head_circ_cm FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq
        WHERE {LIVE} AND x.head_circ_cm IS NOT NULL LIMIT 5"""
    ).fetchall()
    assert rows
    for guid, cm in rows:
        observation = get_json(client, f"/fhir/Observation/{guid}-headcirc")
        assert observation["meta"]["profile"] == [US_CORE + "us-core-head-circumference"]
        value = observation["valueQuantity"]
        assert value == {"value": cm, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"}


GROWTH = {  # variant → (percentile column, LOINC, profile)
    "bmiage": ("bmi_pctl", "59576-9", "pediatric-bmi-for-age"),
    "wtlen": ("wt_len_pctl", "77606-2", "pediatric-weight-for-height"),
    "headpctl": ("hc_pctl", "8289-1", "head-occipital-frontal-circumference-percentile"),
}


@pytest.mark.parametrize("variant", GROWTH)
def test_growth_chart_percentiles_are_for_children_and_claim_their_pediatric_profile(client, raw_db, checker, variant):
    column, loinc, profile = GROWTH[variant]
    rows = raw_db.execute(
        f"""SELECT x.vs_guid, x.{column}, x.taken_dttm, p.dob FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq
        WHERE {LIVE} AND x.{column} IS NOT NULL"""
    ).fetchall()
    assert len(rows) > 3
    for guid, percentile, taken, born in rows[:10]:
        if taken and born and taken[:8].strip("0") and born.strip("0"):
            assert int(taken[:4]) - int(born[:4]) <= (20 if variant == "bmiage" else 4)  # children only
        observation = get_json(client, f"/fhir/Observation/{guid}-{variant}")
        assert observation["meta"]["profile"] == [US_CORE + profile]
        assert observation["code"]["coding"][0]["code"] == loinc
        assert observation["valueQuantity"] == {"value": percentile, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        assert checker.problems(observation) == []


def test_lab_and_vital_sign_provenance_names_who_and_when(client, raw_db):
    guid, updated, interface = raw_db.execute(
        f"""SELECT x.res_guid, x.upd_dttm, o.upd_user FROM lab_result x JOIN pt_master p ON x.pt_seq = p.pt_seq
        JOIN lab_order o ON o.ord_no = x.ord_no WHERE {LIVE} LIMIT 1"""
    ).fetchone()
    provenance = get_json(client, f"/fhir/Provenance/obs-{guid}")
    assert provenance["target"] == [{"reference": f"Observation/{guid}"}]
    assert provenance["meta"]["profile"] == [US_CORE + "us-core-provenance"]
    author, enterer = provenance["agent"]
    assert author["who"] == {"reference": "Organization/GMH"} and enterer["who"]["identifier"]["value"] == interface
    observation = get_json(client, f"/fhir/Observation/{guid}")
    assert provenance["recorded"] == observation["meta"]["lastUpdated"]  # both the row's upd_dttm, as UTC instants
    assert updated[:4] in observation["meta"]["lastUpdated"][:5]

    vital, nurse = raw_db.execute(
        f"SELECT x.vs_guid, x.entered_by FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.bp_sys IS NOT NULL LIMIT 1"
    ).fetchone()
    provenance = get_json(client, f"/fhir/Provenance/obs-{vital}-bp")
    assert provenance["target"] == [{"reference": f"Observation/{vital}-bp"}]
    assert provenance["agent"][1]["who"]["identifier"]["value"] == nurse


def test_observations_revinclude_their_provenance(client, raw_db):
    (patient,) = raw_db.execute(
        f"SELECT p.pt_guid FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE {LIVE} AND x.pt_seq > 1 LIMIT 1"
    ).fetchone()
    pages = get_json(client, f"/fhir/Observation?patient={patient}&_revinclude=Provenance:target&_count=200")
    matches = {e["resource"]["id"] for e in pages["entry"] if e["search"]["mode"] == "match"}
    included = {e["resource"]["id"] for e in pages["entry"] if e["search"]["mode"] == "include"}
    assert matches and included == {f"obs-{i}" for i in matches}
    listed = get_json(client, "/fhir/metadata")["rest"][0]["resource"]
    assert "Provenance:target" in next(r for r in listed if r["type"] == "Observation")["searchRevInclude"]


@pytest.mark.parametrize(
    "parameter,value,sql",
    [
        ("address", "1200 hosp", "g.addr_line1 LIKE '1200 HOSP%' OR g.city LIKE '1200 HOSP%'"),
        ("address", "spring", "g.addr_line1 LIKE 'SPRING%' OR g.city LIKE 'SPRING%' OR g.st_cd LIKE 'SPRING%' OR g.zip_cd LIKE 'SPRING%'"),
        ("address-city", "Springfield", "g.city LIKE 'SPRINGFIELD%'"),
        ("address-state", "il", "g.st_cd LIKE 'IL%'"),
        ("address-postalcode", "62704", "g.zip_cd LIKE '62704%'"),
    ],
)
def test_location_address_searches(client, raw_db, parameter, value, sql):
    """US Core's SHALL address search (and its parts) on Location: a department is in its organization's building."""
    expected = sorted(
        r[0] for r in raw_db.execute(f"SELECT l.dept_cd FROM dept_loc l LEFT JOIN org_mstr g ON g.org_cd = l.org_cd WHERE {sql}")
    )
    assert expected
    assert sorted(r["id"] for r in search_resources(client, f"/fhir/Location?{parameter}={q(value)}&_count=3")) == expected
