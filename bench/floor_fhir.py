"""Hand-built FHIR dicts for the floor server: legacy row tuple in, resource dict out.

Written out by hand for the demo schema (no mapping file, no compiled
templates), producing the same JSON as the façade's demo mapping: same keys,
same pruning of empty elements, same date conversions. The hooks module is
reused because its transforms (lab value parsing, BMI) are domain work any
implementation has to do, not mapping-engine work; so are the demo crosswalk
files (LOINC and problem-code displays, UCUM units), read once at start.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

from legacy_adapters.sources.demo.hooks import allergy_reaction, bmi, lab_quantity, lab_text

LOCAL = ZoneInfo("America/New_York")  # the demo's legacy wall-clock time zone
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB_CATEGORY = [{"coding": [{"system": CATEGORY, "code": "laboratory", "display": "Laboratory"}]}]
VITAL_CATEGORY = [{"coding": [{"system": CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}]
MRN_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number"}]}
GENDER = {"M": "male", "F": "female", "U": "unknown"}
MARITAL = {"S": "Never Married", "M": "Married", "D": "Divorced", "W": "Widowed"}
LAB_STATUS = {"F": "final", "P": "preliminary", "C": "corrected", "X": "cancelled"}
INTERP = {"H": "High", "L": "Low", "N": "Normal"}
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
# Registration pick lists -> OMB categories (CDC race & ethnicity codes), unknown/declined -> null flavors.
CDCREC = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
RACE = {
    "W": (CDCREC, "2106-3", "White"),
    "B": (CDCREC, "2054-5", "Black or African American"),
    "A": (CDCREC, "2028-9", "Asian"),
    "I": (CDCREC, "1002-5", "American Indian or Alaska Native"),
    "P": (CDCREC, "2076-8", "Native Hawaiian or Other Pacific Islander"),
    "O": (CDCREC, "2131-1", "Other Race"),
    "U": (NULL_FLAVOR, "UNK", "Unknown"),
    "D": (NULL_FLAVOR, "ASKU", "Asked but no answer"),
}
ETHNICITY = {
    "H": (CDCREC, "2135-2", "Hispanic or Latino"),
    "N": (CDCREC, "2186-5", "Not Hispanic or Latino"),
    "U": (NULL_FLAVOR, "UNK", "Unknown"),
    "D": (NULL_FLAVOR, "ASKU", "Asked but no answer"),
}
BIRTH_SEX = {"M": "M", "F": "F", "U": "UNK"}
PATIENT_PROFILE = [US_CORE + "us-core-patient"]
LAB_PROFILE = [US_CORE + "us-core-observation-lab", US_CORE + "us-core-observation-clinical-result"]

# Vital-sign variants in the façade's branch order (branch 0 is lab_result):
# name, US Core profile, LOINC, display, column index in VITALS_COLUMNS, unit, UCUM code.
VARIANTS = (
    ("pulse", "us-core-heart-rate", "8867-4", "Heart rate", 5, "beats/minute", "/min"),
    ("resp", "us-core-respiratory-rate", "9279-1", "Respiratory rate", 6, "breaths/minute", "/min"),
    ("temp", "us-core-body-temperature", "8310-5", "Body temperature", 7, "degF", "[degF]"),
    ("weight", "us-core-body-weight", "29463-7", "Body weight", 8, "lb", "[lb_av]"),
    ("height", "us-core-body-height", "8302-2", "Body height", 9, "in", "[in_i]"),
    ("headcirc", "us-core-head-circumference", "9843-4", "Head Occipital-frontal circumference", 12, "cm", "cm"),
    ("spo2", "us-core-pulse-oximetry", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", 10, "%", "%"),
    ("bmi", "us-core-bmi", "39156-5", "Body mass index (BMI) [Ratio]", None, None, None),
    ("bp", "us-core-blood-pressure", "85354-9", "Blood pressure panel with all children optional", None, None, None),
    ("bmiage", "pediatric-bmi-for-age", "59576-9", "Body mass index (BMI) [Percentile] Per age and sex", 13, "%", "%"),
    ("wtlen", "pediatric-weight-for-height", "77606-2", "Weight-for-length Per age and sex", 14, "%", "%"),
    (
        "headpctl",
        "head-occipital-frontal-circumference-percentile",
        "8289-1",
        "Head Occipital-frontal circumference Percentile",
        15,
        "%",
        "%",
    ),
)
# Pulse oximetry carries both codes its profile asks for.
SPO2_CODING = [
    {"system": LOINC, "code": "59408-5", "display": "Oxygen saturation in Arterial blood by Pulse oximetry"},
    {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"},
]
DATA_ABSENT = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}


def s(value):
    """Legacy text: right-trimmed, '' is absent."""
    if isinstance(value, str):
        return value.rstrip() or None
    return value


def _local(text: str | None) -> datetime | None:
    """'YYYYMMDDHHMMSS' local wall-clock time, or None for junk."""
    if not text or len(text) < 14:
        return None
    try:
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:14]), tzinfo=LOCAL)
    except ValueError:
        return None


def instant(text: str | None) -> str | None:
    value = _local(text)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def date_time(text: str | None) -> str | None:
    value = _local(text)
    return value.isoformat() if value else None


def birth_date(text: str | None) -> str | None:
    if not text or len(text) < 8:
        return None
    try:
        return datetime(int(text[0:4]), int(text[4:6]), int(text[6:8])).date().isoformat()
    except ValueError:
        return None


def _base(resource_type: str, rid: str, updated: str | None) -> dict:
    resource = {"resourceType": resource_type, "id": rid}
    stamp = instant(updated)
    if stamp:
        resource["meta"] = {"lastUpdated": stamp}
    return resource


CROSSWALKS = Path(__file__).resolve().parent.parent / "terminology" / "crosswalks" / "demo"
STANDARD_SYSTEMS = {"LOINC": LOINC, "ICD10": "http://hl7.org/fhir/sid/icd-10-cm", "SNOMED-CT": "http://snomed.info/sct"}


def crosswalk(file: str) -> dict[str, tuple[str, list[dict]]]:
    """Local code -> (its display, its standard codings with displays), from a demo crosswalk
    file: the table a hand-written server would need as much as the façade."""
    table: dict[str, tuple[str, list[dict]]] = {}
    with (CROSSWALKS / file).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            _, codings = table.setdefault(row["local_code"], (row["local_display"], []))
            if row["target_code"]:
                codings.append(
                    {"system": STANDARD_SYSTEMS[row["target_system"]], "code": row["target_code"], "display": row["target_display"]}
                )
    return table


LAB_CROSSWALK = crosswalk("lab.csv")
with (CROSSWALKS / "units.csv").open(newline="", encoding="utf-8") as _handle:
    LAB_UCUM = {row["legacy_unit"]: row["ucum_code"] for row in csv.DictReader(_handle)}  # legacy unit text -> UCUM


def _profiled(resource_type: str, rid: str, updated: str | None, profile: list[str]) -> dict:
    stamp = instant(updated)
    return {"resourceType": resource_type, "id": rid, "meta": {"lastUpdated": stamp, "profile": profile} if stamp else {"profile": profile}}


def _prune(d: dict) -> dict | None:
    out = {k: v for k, v in d.items() if v is not None}
    return out or None


def _concept(standard: list[dict], local_system: str, local_code: str | None, display: str | None) -> dict | None:
    """The standard codings, the local coding with its display, and the display as text."""
    coding = list(standard)
    local = _prune({"code": local_code, "display": display})
    if local:
        coding.append({"system": local_system, **local})
    return _prune({"coding": coding or None, "text": display})


# --- Patient -------------------------------------------------------------------------------

PATIENT_COLUMNS = (
    "p.pt_guid, p.upd_dttm, p.mrn, p.merged_to_seq, p.last_nm, p.first_nm, p.mid_init, p.phone_home, "
    "p.sex_cd, p.dob, p.addr_line1, p.city, p.st_cd, p.zip_cd, p.mar_stat, s.pt_guid, p.race_cd, p.ethnic_cd, p.sex_birth"
)


def _omb(url: str, answer: tuple[str, str, str] | None) -> list[dict]:
    """The US Core race or ethnicity extension for a pick-list answer; none for an unknown code."""
    if answer is None:
        return []
    system, code, display = answer
    return [
        {
            "url": url,
            "extension": [
                {"url": "ombCategory", "valueCoding": {"system": system, "code": code, "display": display}},
                {"url": "text", "valueString": display},
            ],
        }
    ]


def patient(row: tuple) -> dict:
    (
        guid,
        updated,
        mrn,
        merged,
        last,
        first,
        mid,
        phone,
        sex,
        dob,
        addr,
        city,
        state,
        zip_cd,
        marital,
        survivor,
        race,
        ethnic,
        birth_sex,
    ) = map(s, row)
    r = _profiled("Patient", guid, updated, PATIENT_PROFILE)
    extension = _omb(US_CORE + "us-core-race", RACE.get(race)) + _omb(US_CORE + "us-core-ethnicity", ETHNICITY.get(ethnic))
    if birth_sex in BIRTH_SEX:
        extension.append({"url": US_CORE + "us-core-birthsex", "valueCode": BIRTH_SEX[birth_sex]})
    if extension:
        r["extension"] = extension
    if mrn:
        r["identifier"] = [{"use": "usual", "type": MRN_TYPE, "system": "urn:fhir-facade:demo:mrn", "value": mrn}]
    r["active"] = merged is None
    given = [g for g in (first.title() if first else None, mid) if g]
    name = _prune({"family": last.title() if last else None, "given": given or None})
    if name:
        r["name"] = [{"use": "official", **name}]
    if phone:
        r["telecom"] = [{"system": "phone", "value": phone, "use": "home"}]
    r["gender"] = GENDER.get(sex, "unknown") if sex else "unknown"
    born = birth_date(dob)
    if born:
        r["birthDate"] = born
    address = _prune(
        {"line": [addr.title()] if addr else None, "city": city.title() if city else None, "state": state, "postalCode": zip_cd}
    )
    if address:
        r["address"] = [{"use": "home", **address}]
    if marital in MARITAL:
        r["maritalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": marital, "display": MARITAL[marital]}]
        }
    if survivor:
        r["link"] = [{"other": {"reference": f"Patient/{survivor}"}, "type": "replaced-by"}]
    return r


# --- Observation: laboratory ---------------------------------------------------------------

LAB_COLUMNS = (
    "r.res_guid, r.upd_dttm, r.res_status, r.test_cd, t.test_desc, p.pt_guid, r.collect_dttm, "
    "r.result_val, r.result_units, r.abn_flag, r.comments, r.ref_rng, t.dflt_units"
)

# Printed reference ranges: '4.0-5.6' / '4 to 5.6' give low and high, '<200' a high, '>=60' a low;
# the printed text is always kept. Numbers keep their printed precision (4.0 a decimal, 70 an integer).
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_BETWEEN = re.compile(rf"^\s*(?P<low>{_NUMBER})\s*(?:-|–|to)\s*(?P<high>{_NUMBER})\s*$", re.IGNORECASE)
_BOUND = re.compile(rf"^\s*(?P<op><=|>=|<|>|≤|≥)\s*(?P<value>{_NUMBER})\s*$")


def _number(text: str) -> int | float:
    text = text.lstrip("+")
    return float(text) if "." in text else int(text)


def _bound(value: int | float, unit: str | None) -> dict:
    if unit is None:
        return {"value": value}
    ucum = LAB_UCUM.get(unit)
    return {"value": value, "unit": unit, "system": UCUM, "code": ucum} if ucum else {"value": value, "unit": unit}


def reference_range(text: str | None, unit: str | None) -> dict | None:
    if text is None or not text.strip():
        return None
    text = text.strip()
    low = high = None
    if between := _BETWEEN.match(text):
        low, high = _number(between["low"]), _number(between["high"])
        if low > high:  # no range anyone meant: text only
            low = high = None
    elif bound := _BOUND.match(text):
        if bound["op"] in ("<", "<=", "≤"):
            high = _number(bound["value"])
        else:
            low = _number(bound["value"])
    item = {}
    if low is not None:
        item["low"] = _bound(low, unit)
    if high is not None:
        item["high"] = _bound(high, unit)
    item["text"] = text
    return item


def lab(row: tuple) -> dict:
    guid, updated, status, test, desc, patient_guid, collected, value, units, flag, comments, printed, ref_units = map(s, row)
    r = _profiled("Observation", guid, updated, LAB_PROFILE)
    r["status"] = LAB_STATUS.get(status, "unknown") if status else "unknown"
    r["category"] = LAB_CATEGORY
    code = _concept(LAB_CROSSWALK.get(test, ("", []))[1], "urn:fhir-facade:demo:lab-test", test, desc)
    if code:
        r["code"] = code
    r["subject"] = {"reference": f"Patient/{patient_guid}"}
    when = date_time(collected)
    if when:
        r["effectiveDateTime"] = when
    quantity = lab_quantity(value, units)
    if quantity:
        ucum = LAB_UCUM.get(quantity.get("unit"))
        r["valueQuantity"] = {**quantity, "system": UCUM, "code": ucum} if ucum else quantity
    text = lab_text(value)
    if text:
        r["valueString"] = text
    if flag in INTERP:
        r["interpretation"] = [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": flag, "display": INTERP[flag]}
                ]
            }
        ]
    if comments:
        r["note"] = [{"text": comments}]
    ranges = reference_range(printed, units if units is not None else ref_units)
    if ranges:
        r["referenceRange"] = [ranges]
    return r


# --- Observation: vital signs (one wide row, one resource per measurement) ------------------

VITALS_COLUMNS = "v.vs_guid, v.upd_dttm, p.pt_guid, v.taken_dttm, v.bp_sys, v.pulse, v.resp_rate, v.temp_f, v.wt_lb, v.ht_in, v.spo2, v.bp_dia, v.head_circ_cm, v.bmi_pctl, v.wt_len_pctl, v.hc_pctl"


def _bp_component(loinc: str, display: str, value) -> dict:
    return {
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
        "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
    }


def variant_codes(variant: tuple) -> tuple[str, ...]:
    """The LOINC codes a vital-sign variant answers a code search for."""
    return (variant[2], "2708-6") if variant[0] == "spo2" else (variant[2],)


def vitals(row: tuple, branches: frozenset[int] | None = None) -> list[tuple[int, dict]]:
    """(branch, Observation) for each measurement the row holds, in branch order."""
    guid, updated, patient_guid, taken = row[0], row[1], row[2], row[3]
    stamp, when = instant(updated), date_time(taken)
    out = []
    for branch, (name, profile, loinc, display, column, unit, ucum) in enumerate(VARIANTS, start=1):
        if branches is not None and branch not in branches:
            continue
        if name == "bmi":
            if row[8] is None or row[9] is None:
                continue
            quantity = bmi(row[8], row[9])
        elif name == "bp":
            if row[4] is None or row[11] is None:
                continue
            quantity = None
        else:
            if row[column] is None:
                continue
            quantity = {"value": row[column], "unit": unit, "system": UCUM, "code": ucum}
        r = {"resourceType": "Observation", "id": f"{guid}-{name}"}
        r["meta"] = {"lastUpdated": stamp, "profile": [US_CORE + profile]} if stamp else {"profile": [US_CORE + profile]}
        r["status"] = "final"
        r["category"] = VITAL_CATEGORY
        coding = SPO2_CODING if name == "spo2" else [{"system": LOINC, "code": loinc, "display": display}]
        r["code"] = {"coding": coding, "text": display}
        r["subject"] = {"reference": f"Patient/{patient_guid}"}
        if when:
            r["effectiveDateTime"] = when
        else:
            r["_effectiveDateTime"] = DATA_ABSENT
        if quantity:
            r["valueQuantity"] = quantity
        if name == "bp":
            r["component"] = [
                _bp_component("8480-6", "Systolic blood pressure", row[4]),
                _bp_component("8462-4", "Diastolic blood pressure", row[11]),
            ]
        out.append((branch, r))
    return out


# Smoking status (soc_hx), the Observation branch after the vital signs.
SMOKING_BRANCH = len(VARIANTS) + 1
SMOKING_LOINC = "72166-2"
SMOKING_COLUMNS = "h.sh_guid, h.upd_dttm, p.pt_guid, h.rec_dttm, h.tob_use"
SMOKING_CATEGORY = [{"coding": [{"system": CATEGORY, "code": "social-history", "display": "Social History"}]}]
SMOKING_PROFILE = ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-smokingstatus"]
SMOKING_SNOMED = {
    "N": ("266919005", "Never smoked tobacco"),
    "F": ("8517006", "Ex-smoker"),
    "C": ("449868002", "Smokes tobacco daily"),
    "S": ("428041000124106", "Occasional tobacco smoker"),
    "U": ("266927001", "Tobacco smoking consumption unknown"),
}


def smoking(row: tuple) -> dict:
    guid, updated, patient_guid, recorded, answer = row[0], row[1], row[2], row[3], s(row[4])
    r = _profiled("Observation", guid, updated, SMOKING_PROFILE)
    r["status"] = "final"
    r["category"] = SMOKING_CATEGORY
    r["code"] = {
        "coding": [{"system": LOINC, "code": SMOKING_LOINC, "display": "Tobacco smoking status"}],
        "text": "Tobacco smoking status",
    }
    r["subject"] = {"reference": f"Patient/{patient_guid}"}
    when = date_time(recorded)
    if when:
        r["effectiveDateTime"] = when
    else:
        r["_effectiveDateTime"] = {
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]
        }
    code, display = SMOKING_SNOMED.get(answer, SMOKING_SNOMED["U"])
    coding = [{"system": "http://snomed.info/sct", "code": code, "display": display}]
    if answer:
        coding.append({"system": "urn:fhir-facade:demo:tobacco-use", "code": answer})
    r["valueCodeableConcept"] = {"coding": coding}
    return r


# Occupation (emp_hx), pregnancy status and intent (ob_hx), the Hunger Vital Sign (hvs_form):
# the Observation branches after smoking status, in the mapping's order.
SOCIAL = [{"coding": [{"system": CATEGORY, "code": "social-history", "display": "Social History"}]}]
SCREENING = [
    {"coding": [{"system": CATEGORY, "code": "survey", "display": "Survey"}]},
    {"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-category", "code": "sdoh", "display": "SDOH"}]},
]
SNOMED = "http://snomed.info/sct"
PREGNANCY = {
    "Y": (SNOMED, "77386006", "Pregnant"),
    "N": (SNOMED, "60001007", "Not pregnant"),
    "U": ("http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "UNK", "Unknown"),
}
INTENT = {
    "Y": (SNOMED, "454411000124108", "Wants to become pregnant"),
    "N": (SNOMED, "454401000124105", "No desire to become pregnant"),
    "U": (SNOMED, "454381000124105", "Not sure of desire to become pregnant"),
}
HUNGER = {
    "O": (LOINC, "LA28397-0", "Often true"),
    "S": (LOINC, "LA6729-3", "Sometimes true"),
    "N": (LOINC, "LA28398-8", "Never true"),
    "R": (LOINC, "LA15775-2", "Don't know/refused"),
}
HUNGER_QUESTIONS = {
    "88122-7": "Within the past 12 months we worried whether our food would run out before we got money to buy more",
    "88123-5": "Within the past 12 months the food we bought just didn't last and we didn't have money to get more",
}


def _date8(text: str | None) -> str | None:
    return birth_date(s(text))


def _social(guid: str, updated: str | None, profile: str, category: list, loinc: str, display: str, text: str, patient_guid: str) -> dict:
    r = _profiled("Observation", guid, updated, [US_CORE + profile])
    r["status"] = "final"
    r["category"] = category
    r["code"] = {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": text}
    r["subject"] = {"reference": f"Patient/{patient_guid}"}
    return r


def occupation(row: tuple) -> dict:
    guid, updated, patient_guid, start, end, job, industry = row[0], row[1], row[2], row[3], row[4], s(row[5]), s(row[6])
    r = _social(guid, updated, "us-core-observation-occupation", SOCIAL, "11341-5", "History of Occupation", "Occupation", patient_guid)
    period = _prune({"start": _date8(start), "end": _date8(end)})
    if period:
        r["effectivePeriod"] = period
    r["valueCodeableConcept"] = {"text": job}
    if industry:
        code = {"coding": [{"system": LOINC, "code": "86188-0", "display": "History of Occupation industry"}]}
        r["component"] = [{"code": code, "valueCodeableConcept": {"text": industry}}]
    return r


def _coded(answer: tuple[str, str, str]) -> dict:
    system, code, display = answer
    return {"coding": [{"system": system, "code": code, "display": display}]}


def pregnancy(row: tuple, variant: str) -> dict:
    guid, updated, patient_guid, recorded, status, intent = row[0], row[1], row[2], row[3], s(row[4]), s(row[5])
    if variant == "status":
        profile, loinc, display, value = "us-core-observation-pregnancystatus", "82810-3", "Pregnancy status", PREGNANCY[status]
    else:
        profile, loinc, display = "us-core-observation-pregnancyintent", "86645-9", "Pregnancy intention in the next year - Reported"
        value = INTENT[intent]
    r = _social(f"{guid}-{variant}", updated, profile, SOCIAL, loinc, display, display, patient_guid)
    when = date_time(recorded)
    if when:
        r["effectiveDateTime"] = when
    else:
        r["_effectiveDateTime"] = DATA_ABSENT
    r["valueCodeableConcept"] = _coded(value)
    return r


def hunger(row: tuple, variant: str) -> dict:
    guid, updated, patient_guid, filled, answers = row[0], row[1], row[2], row[3], (s(row[4]), s(row[5]))
    if variant == "panel":
        loinc, display = "88121-9", "Hunger Vital Sign [HVS]"
    else:
        loinc = "88122-7" if variant == "q1" else "88123-5"
        display = HUNGER_QUESTIONS[loinc]
    r = _social(f"{guid}-{variant}", updated, "us-core-observation-screening-assessment", SCREENING, loinc, display, display, patient_guid)
    when = date_time(filled)
    if when:
        r["effectiveDateTime"] = when
    if variant == "panel":
        r["hasMember"] = [{"reference": f"Observation/{guid}-q{i}"} for i, answer in enumerate(answers, 1) if answer in HUNGER]
    else:
        r["valueCodeableConcept"] = _coded(HUNGER[answers[0 if variant == "q1" else 1]])
    return r


class SocialBranch(NamedTuple):
    branch: int
    loinc: str
    categories: tuple[str, ...]
    suffix: str  # after the row's guid in the id ('' for one Observation per row)
    sql: str  # FROM … WHERE … (the patient and cursor conditions are added), the row's columns first
    when: str  # the date column the façade sorts on
    guid: str
    build: Callable[[tuple], dict]


_ANSWERED = "IN ('O', 'S', 'N', 'R')"
_OB = "SELECT b.ob_guid, b.upd_dttm, p.pt_guid, b.rec_dttm, b.preg_yn, b.preg_intent FROM ob_hx b JOIN pt_master p ON p.pt_seq = b.pt_seq WHERE b.del_flg != 'Y'"
_HVS = "SELECT f.hvs_guid, f.upd_dttm, p.pt_guid, f.form_dttm, f.q1_ans, f.q2_ans FROM hvs_form f JOIN pt_master p ON p.pt_seq = f.pt_seq WHERE f.del_flg != 'Y'"
_SCREENING = ("survey", "sdoh")
SOCIAL_BRANCHES = (
    SocialBranch(
        SMOKING_BRANCH + 1,
        "11341-5",
        ("social-history",),
        "",
        "SELECT j.emp_guid, j.upd_dttm, p.pt_guid, j.start_dt, j.end_dt, j.occ_desc, j.ind_desc FROM emp_hx j "
        "JOIN pt_master p ON p.pt_seq = j.pt_seq WHERE j.del_flg != 'Y' AND j.occ_desc NOT IN ('') AND j.occ_desc IS NOT NULL",
        "j.start_dt",
        "j.emp_guid",
        occupation,
    ),
    SocialBranch(
        SMOKING_BRANCH + 2,
        "82810-3",
        ("social-history",),
        "-status",
        f"{_OB} AND b.preg_yn IN ('Y', 'N', 'U')",
        "b.rec_dttm",
        "b.ob_guid",
        functools.partial(pregnancy, variant="status"),
    ),
    SocialBranch(
        SMOKING_BRANCH + 3,
        "86645-9",
        ("social-history",),
        "-intent",
        f"{_OB} AND b.preg_intent IN ('Y', 'N', 'U')",
        "b.rec_dttm",
        "b.ob_guid",
        functools.partial(pregnancy, variant="intent"),
    ),
    SocialBranch(
        SMOKING_BRANCH + 4,
        "88121-9",
        _SCREENING,
        "-panel",
        f"{_HVS} AND (f.q1_ans {_ANSWERED} OR f.q2_ans {_ANSWERED})",
        "f.form_dttm",
        "f.hvs_guid",
        functools.partial(hunger, variant="panel"),
    ),
    SocialBranch(
        SMOKING_BRANCH + 5,
        "88122-7",
        _SCREENING,
        "-q1",
        f"{_HVS} AND f.q1_ans {_ANSWERED}",
        "f.form_dttm",
        "f.hvs_guid",
        functools.partial(hunger, variant="q1"),
    ),
    SocialBranch(
        SMOKING_BRANCH + 6,
        "88123-5",
        _SCREENING,
        "-q2",
        f"{_HVS} AND f.q2_ans {_ANSWERED}",
        "f.form_dttm",
        "f.hvs_guid",
        functools.partial(hunger, variant="q2"),
    ),
)


# --- $everything: AllergyIntolerance and Condition (the types a first page reaches) ---------

ALLERGY_COLUMNS = "a.alg_guid, a.upd_dttm, a.alg_stat, a.verif_yn, c.alg_cat, c.snomed_cd, a.alg_cd, c.alg_desc, p.pt_guid, a.entered_dt, a.rxn_txt, a.sev_cd"
ALLERGY_PROFILE = ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"]
ALLERGY_STATUS = {"A": "active", "I": "inactive", "R": "resolved"}
ALLERGY_VERIFICATION = {"Y": "confirmed", "N": "unconfirmed"}
ALLERGY_CATEGORY = {"D": "medication", "F": "food", "E": "environment"}


def allergy(row: tuple) -> dict:
    guid, updated, status, verified, category, snomed, code, desc, patient_guid, entered, reaction_text, severity = map(s, row)
    r = _profiled("AllergyIntolerance", guid, updated, ALLERGY_PROFILE)
    if status in ALLERGY_STATUS:
        r["clinicalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": ALLERGY_STATUS[status]}]
        }
    if verified in ALLERGY_VERIFICATION:
        r["verificationStatus"] = {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": ALLERGY_VERIFICATION[verified]}
            ]
        }
    if category in ALLERGY_CATEGORY:
        r["category"] = [ALLERGY_CATEGORY[category]]
    concept = _concept(
        [{"system": "http://snomed.info/sct", "code": snomed}] if snomed else [], "urn:fhir-facade:demo:allergen", code, desc
    )
    if concept:
        r["code"] = concept
    r["patient"] = {"reference": f"Patient/{patient_guid}"}
    recorded = birth_date(entered)
    if recorded:
        r["recordedDate"] = recorded
    reaction = allergy_reaction(reaction_text, severity)
    if reaction:
        r["reaction"] = [reaction]
    return r


# Conditions: the problem list (branch 0) and visit diagnoses (branch 1), one row shape for both.
PROBLEM_COLUMNS = "q.prob_guid AS id, q.upd_dttm, q.prob_stat, q.dx_codes, q.prob_desc, p.pt_guid, NULL, q.onset_dt, q.resolved_dt, q.entered_dt, 0 AS branch"
DIAGNOSIS_COLUMNS = "dx.dx_guid, dx.upd_dttm, NULL, dx.dx_codes, dx.dx_desc, p.pt_guid, e.visit_guid, NULL, NULL, dx.ent_dttm, 1"
CONDITION_PROFILES = (
    ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns"],
    ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis"],
)
CONDITION_CATEGORIES = (
    [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "problem-list-item",
                    "display": "Problem List Item",
                }
            ]
        }
    ],
    [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "encounter-diagnosis",
                    "display": "Encounter Diagnosis",
                }
            ]
        }
    ],
)
CONFIRMED = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed", "display": "Confirmed"}]
}
PROBLEM_STATUS = {"A": "active", "R": "resolved", "I": "inactive"}
DX_SYSTEMS = {**STANDARD_SYSTEMS, "LOCAL": "urn:fhir-facade:demo:problem"}


PROBLEM_CROSSWALK = crosswalk("problem.csv")


def dx_codings(text: str | None) -> list[dict]:
    """'ICD10:E11.9;SNOMED-CT:44054006' -> codings; a local code brings its standard codings first."""
    codings: list[dict] = []
    for item in (text or "").split(";"):
        system, _, code = item.strip().partition(":")
        if system == "LOCAL" and code in PROBLEM_CROSSWALK:
            display, standard = PROBLEM_CROSSWALK[code]
            codings += [*standard, {"system": DX_SYSTEMS["LOCAL"], "code": code, "display": display}]
        elif system in DX_SYSTEMS and code:
            codings.append({"system": DX_SYSTEMS[system], "code": code})
    return codings


def condition(row: tuple) -> dict:
    guid, updated, status, codes, desc, patient_guid, visit, onset, resolved, recorded, branch = map(s, row)
    r = _profiled("Condition", guid, updated, CONDITION_PROFILES[branch])
    if status in PROBLEM_STATUS:
        r["clinicalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": PROBLEM_STATUS[status]}]
        }
    r["verificationStatus"] = CONFIRMED
    r["category"] = CONDITION_CATEGORIES[branch]
    concept = _prune({"coding": dx_codings(codes) or None, "text": desc})
    if concept:
        r["code"] = concept
    r["subject"] = {"reference": f"Patient/{patient_guid}"}
    if visit:
        r["encounter"] = {"reference": f"Encounter/{visit}"}
    for element, value in (
        ("onsetDateTime", birth_date(onset)),
        ("abatementDateTime", birth_date(resolved)),
        ("recordedDate", birth_date(recorded) if branch == 0 else date_time(recorded)),
    ):
        if value:
            r[element] = value
    return r
