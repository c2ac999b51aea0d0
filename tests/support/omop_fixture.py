"""An OMOP CDM 5.4 database: the official OHDSI DDL, unmodified, on SQLite, PostgreSQL or MariaDB,
with ten synthetic patients.

The DDL files are vendored byte for byte in ``legacy_adapters/sources/omop/ddl`` (see NOTICE there).
They are SqlRender templates: the one token ``@cdmDatabaseSchema`` is replaced by the schema, as
OHDSI's own ``executeDdl`` does. Per engine:

* SQLite: the sqlite DDL and indices (SQLite has no ALTER TABLE … ADD CONSTRAINT, so no keys,
  as OHDSI's own SQLite databases). Dates are ISO text, ``*_datetime`` columns (REAL) hold Unix
  seconds, as OHDSI's DatabaseConnector writes them.
* PostgreSQL: DDL, primary keys, the rows, then the foreign keys (which check that every
  concept the rows name exists, 0 included) and the indices.
* MariaDB: the sqlite_extended DDL (DATE, DATETIME, DOUBLE: every value kept exactly) and its
  indices, statement by statement, with ``ANSI_QUOTES`` for the session (``note_nlp."offset"``).
  No official MySQL target exists; this pairing is the project's choice.

The vocabulary rows are synthetic stand-ins (Athena's vocabularies are licensed separately), with
real concept ids where that helps reading, and deliberate traps: one code in two vocabularies
(E11.9 in ICD10CM and in WHO's ICD10), a local concept whose code equals a LOINC code, concept 0
("no matching concept") on unmapped rows.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

DDL = Path(__file__).resolve().parents[2] / "legacy_adapters" / "sources" / "omop" / "ddl"
SHA256 = {  # the official files at OHDSI/CommonDataModel v5.4.2 (aa047a3c620b5c842b4370a0c965e2aa72203b1d)
    "OMOPCDM_postgresql_5.4_ddl.sql": "ae99be6e79edfad5f17ef71edda176281b45e3aa9e400e7a9f829103f5ec4771",
    "OMOPCDM_postgresql_5.4_primary_keys.sql": "ffe6cc10f04a713ea86825dccfc1d8b8a981ba6037fc69cb9df4c80ce2f1970d",
    "OMOPCDM_postgresql_5.4_constraints.sql": "dedae8072ef585e25e0ab2624f557e37e5ddd2d51e75810af58b02e990a4f293",
    "OMOPCDM_postgresql_5.4_indices.sql": "8a3537f971c75e9e33c3d1d13b041d4e5de8532dc1607bc31349af3679a66eec",
    "OMOPCDM_sqlite_5.4_ddl.sql": "a740bbde73972347ff66966d07a4b75c0ecd34e3c27183f2b79e0b258341de86",
    "OMOPCDM_sqlite_5.4_indices.sql": "c1e5be50cd9a4165df1ea00252964b57b157e1628645ab2940e6aff3ed76ffff",
    "OMOPCDM_sqlite_extended_5.4_ddl.sql": "75ed08971cc8100726bad775c6c8a4eb7ee4cfc23b217af9c49828b59a83028b",
    "OMOPCDM_sqlite_extended_5.4_indices.sql": "784548c9a96a9d3f8e7c1f4ca4819e283e3142fd9f46935c684def61f15005c9",
}


def official(name: str) -> str:
    text = (DDL / name).read_text(encoding="utf-8")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == SHA256[name], f"{name} is not the official file"
    return text


def render(text: str, schema: str) -> str:
    """What SqlRender does to these files: the schema in place of ``@cdmDatabaseSchema``."""
    return text.replace("@cdmDatabaseSchema", schema)


# --------------------------------------------------------------------------- vocabulary
VOCABULARIES = ["None", "Gender", "Race", "Ethnicity", "Visit", "Type Concept", "LOINC", "SNOMED", "ICD10CM", "ICD10", "RxNorm"]
VOCABULARIES += ["UCUM", "CPT4", "Meas Value Operator", "LocalLab"]
DOMAINS = ["Metadata", "Gender", "Race", "Ethnicity", "Visit", "Type Concept", "Measurement", "Condition", "Drug", "Procedure"]
DOMAINS += ["Unit", "Meas Value", "Meas Value Operator", "Observation", "Route"]
CLASSES = ["Undefined", "Gender", "Race", "Ethnicity", "Visit", "Type Concept", "Lab Test", "Clinical Observation", "Clinical Finding"]
CLASSES += ["4-char billing code", "3-char nonbill code", "Ingredient", "Procedure", "CPT4", "Unit", "Answer", "Meas Value Operator"]
CLASSES += ["Qualifier Value"]

# concept_id: (name, domain, vocabulary, class, standard, code)
CONCEPTS: dict[int, tuple] = {
    0: ("No matching concept", "Metadata", "None", "Undefined", None, "No matching concept"),
    8507: ("MALE", "Gender", "Gender", "Gender", "S", "M"),
    8532: ("FEMALE", "Gender", "Gender", "Gender", "S", "F"),
    8527: ("White", "Race", "Race", "Race", "S", "5"),
    8516: ("Black or African American", "Race", "Race", "Race", "S", "3"),
    38003564: ("Not Hispanic or Latino", "Ethnicity", "Ethnicity", "Ethnicity", "S", "Not Hispanic"),
    9201: ("Inpatient Visit", "Visit", "Visit", "Visit", "S", "IP"),
    9202: ("Outpatient Visit", "Visit", "Visit", "Visit", "S", "OP"),
    9203: ("Emergency Room Visit", "Visit", "Visit", "Visit", "S", "ER"),
    32817: ("EHR", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976890"),
    32840: ("EHR problem list", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976906"),
    32838: ("EHR prescription", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976904"),
    32825: ("EHR dispensing record", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976891"),
    3004410: ("Hemoglobin A1c/Hemoglobin.total in Blood", "Measurement", "LOINC", "Lab Test", "S", "4548-4"),
    3004501: ("Glucose [Mass/volume] in Serum or Plasma", "Measurement", "LOINC", "Lab Test", "S", "2345-7"),
    3004249: ("Systolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "S", "8480-6"),
    3012888: ("Diastolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "S", "8462-4"),
    3027018: ("Heart rate", "Measurement", "LOINC", "Clinical Observation", "S", "8867-4"),
    3020891: ("Body temperature", "Measurement", "LOINC", "Clinical Observation", "S", "8310-5"),
    3025315: ("Body weight", "Measurement", "LOINC", "Clinical Observation", "S", "29463-7"),
    3016407: ("Drug screen panel in Urine", "Measurement", "LOINC", "Lab Test", "S", "19659-2"),
    40766362: ("Tobacco smoking status", "Observation", "LOINC", "Clinical Observation", "S", "72166-2"),
    2000000001: ("Local glucose test", "Measurement", "LocalLab", "Lab Test", None, "2345-7"),  # the same code as LOINC's glucose
    8554: ("percent", "Unit", "UCUM", "Unit", "S", "%"),
    8840: ("milligram per deciliter", "Unit", "UCUM", "Unit", "S", "mg/dL"),
    8876: ("millimeter mercury column", "Unit", "UCUM", "Unit", "S", "mm[Hg]"),
    8541: ("per minute", "Unit", "UCUM", "Unit", "S", "/min"),
    9289: ("degree Fahrenheit", "Unit", "UCUM", "Unit", "S", "[degF]"),
    9529: ("kilogram", "Unit", "UCUM", "Unit", "S", "kg"),
    45878583: ("Negative", "Meas Value", "LOINC", "Answer", "S", "LA6577-6"),
    45883458: ("Never smoker", "Meas Value", "LOINC", "Answer", "S", "LA18978-9"),
    4171756: ("<", "Meas Value Operator", "Meas Value Operator", "Meas Value Operator", "S", "<"),
    4172704: (">", "Meas Value Operator", "Meas Value Operator", "Meas Value Operator", "S", ">"),
    201826: ("Type 2 diabetes mellitus", "Condition", "SNOMED", "Clinical Finding", "S", "44054006"),
    320128: ("Essential hypertension", "Condition", "SNOMED", "Clinical Finding", "S", "59621000"),
    45576876: ("Type 2 diabetes mellitus without complications", "Condition", "ICD10CM", "4-char billing code", None, "E11.9"),
    45591029: ("Essential (primary) hypertension", "Condition", "ICD10CM", "3-char nonbill code", None, "I10"),
    35206882: ("Type 2 diabetes mellitus, without complications", "Condition", "ICD10", "4-char billing code", None, "E11.9"),
    1503297: ("metformin", "Drug", "RxNorm", "Ingredient", "S", "6809"),
    1308216: ("lisinopril", "Drug", "RxNorm", "Ingredient", "S", "29046"),
    4132161: ("Oral", "Route", "SNOMED", "Qualifier Value", "S", "26643006"),
    4230911: ("Plain chest X-ray", "Procedure", "SNOMED", "Procedure", "S", "399208008"),
    2313814: ("Electrocardiogram, routine ECG with at least 12 leads", "Procedure", "CPT4", "CPT4", "S", "93000"),
}


def _vocabulary_rows() -> dict[str, list[dict]]:
    never = date(2099, 12, 31)
    return {
        "vocabulary": [
            {
                "vocabulary_id": v,
                "vocabulary_name": v,
                "vocabulary_reference": "synthetic",
                "vocabulary_version": "test",
                "vocabulary_concept_id": 0,
            }
            for v in VOCABULARIES
        ],
        "domain": [{"domain_id": d, "domain_name": d, "domain_concept_id": 0} for d in DOMAINS],
        "concept_class": [{"concept_class_id": c, "concept_class_name": c, "concept_class_concept_id": 0} for c in CLASSES],
        "concept": [
            {
                "concept_id": cid,
                "concept_name": name,
                "domain_id": domain,
                "vocabulary_id": vocabulary,
                "concept_class_id": cls,
                "standard_concept": standard,
                "concept_code": code,
                "valid_start_date": date(1970, 1, 1),
                "valid_end_date": never,
                "invalid_reason": None,
            }
            for cid, (name, domain, vocabulary, cls, standard, code) in CONCEPTS.items()
        ],
    }


# --------------------------------------------------------------------------- clinical rows
def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _d(text: str) -> date:
    return date.fromisoformat(text)


LOCATIONS = [
    {"location_id": 1, "address_1": "12 Elm Street", "city": "Springfield", "state": "IL", "zip": "62701", "location_source_value": "L1"},
    {"location_id": 2, "address_1": "1 Hospital Plaza", "city": "Princeton", "state": "NJ", "zip": "08540", "location_source_value": "L2"},
    {"location_id": 3, "address_1": "200 Main Street", "city": "Springfield", "state": "IL", "zip": "62702", "location_source_value": "L3"},
]
CARE_SITES = [
    {"care_site_id": 1, "care_site_name": "Princeton Plainsboro Hospital", "location_id": 2, "care_site_source_value": "PPTH"},
    {"care_site_id": 2, "care_site_name": "Main Street Clinic", "location_id": 3, "care_site_source_value": "MSC"},
]
PROVIDERS = [
    {
        "provider_id": 1,
        "provider_name": "Gregory House",
        "npi": "1234567893",
        "care_site_id": 1,
        "gender_concept_id": 8507,
        "provider_source_value": "GH",
    },
    {
        "provider_id": 2,
        "provider_name": "Lisa Cuddy",
        "npi": "1245319599",
        "care_site_id": 1,
        "gender_concept_id": 8532,
        "provider_source_value": "LC",
    },
    {
        "provider_id": 3,
        "provider_name": "Clinic Nurse",
        "npi": None,
        "care_site_id": 2,
        "gender_concept_id": 0,
        "provider_source_value": "RN",
    },
]


def _person(pid, gender, year, month, day, born, source, location=None, provider=None, race=8527) -> dict:
    return {
        "person_id": pid,
        "gender_concept_id": gender,
        "year_of_birth": year,
        "month_of_birth": month,
        "day_of_birth": day,
        "birth_datetime": _dt(born) if born else None,
        "race_concept_id": race,
        "ethnicity_concept_id": 38003564,
        "location_id": location,
        "provider_id": provider,
        "person_source_value": source,
    }


PERSONS = [
    _person(1, 8532, 1950, 6, 1, "1950-06-01 08:30:00", "MRN001", location=1, provider=1),  # before 1970: negative epoch on SQLite
    _person(2, 8507, 1972, 3, None, None, "MRN002"),  # year and month only
    _person(3, 8532, 1985, None, None, None, "mrn003", race=8516),  # year only; a lower-case MRN
    _person(4, 0, 1990, 12, 24, "1990-12-24 06:00:00", "MRN004"),  # gender 0: no matching concept
    _person(5, 8507, 1940, 1, 15, "1940-01-15 00:00:00", "MRN005"),  # died: a date only
    _person(6, 8532, 1961, 7, 4, None, "MRN006", provider=2),  # died: date and time
    _person(7, 8507, 1999, 2, 2, "1999-02-03 00:00:00", "MRN007"),  # parts and datetime disagree: the datetime wins
    _person(8, 8507, 2001, 11, 30, None, "MRN008"),  # no events at all
    _person(9, 8532, 1968, 1, 1, "1968-01-01 00:00:00", "MRN009"),
    _person(10, 8507, 1955, None, None, None, "MRN010"),
]
DEATHS = [
    {"person_id": 5, "death_date": _d("2020-05-05"), "death_datetime": None, "death_type_concept_id": 32817},
    {"person_id": 6, "death_date": _d("2021-08-09"), "death_datetime": _dt("2021-08-09 14:30:00"), "death_type_concept_id": 32817},
]


def _visit(vid, pid, concept, start, end, provider=None, care_site=None, source=None, preceding=None) -> dict:
    timed = " " in start
    return {
        "visit_occurrence_id": vid,
        "person_id": pid,
        "visit_concept_id": concept,
        "visit_start_date": _d(start[:10]),
        "visit_start_datetime": _dt(start) if timed else None,
        "visit_end_date": _d(end[:10]),
        "visit_end_datetime": _dt(end) if " " in end else None,
        "visit_type_concept_id": 32817,
        "provider_id": provider,
        "care_site_id": care_site,
        "visit_source_value": source,
        "admitted_from_concept_id": 0 if concept == 9201 else None,
        "preceding_visit_occurrence_id": preceding,
    }


VISITS = [
    _visit(1, 1, 9201, "2023-01-10 08:00:00", "2023-01-15 11:30:00", provider=1, care_site=1, source="IP-2023-001"),
    _visit(2, 1, 9202, "2023-03-01", "2023-03-01", provider=2, care_site=2, source="OP-77", preceding=1),
    _visit(3, 2, 9203, "2023-02-02 22:10:00", "2023-02-03 03:00:00", provider=1, care_site=1, source="ER-5"),
    _visit(4, 3, 9202, "2022-11-11", "2022-11-11", care_site=2),
    _visit(5, 4, 0, "2023-05-05", "2023-05-05", source="??"),  # a visit type nobody mapped
    _visit(6, 5, 9202, "2020-01-01", "2020-01-01", care_site=2),
    _visit(7, 6, 9201, "2021-08-01 09:00:00", "2021-08-09 14:30:00", provider=2, care_site=1),
    _visit(8, 9, 9202, "2023-07-07 10:00:00", "2023-07-07 10:45:00", provider=3, care_site=2),
]


def _measurement(
    mid, pid, concept, when, number=None, unit=0, source=None, visit=None, low=None, high=None, operator=None, value_concept=None
):
    return {
        "measurement_id": mid,
        "person_id": pid,
        "measurement_concept_id": concept,
        "measurement_date": _d(when[:10]),
        "measurement_datetime": _dt(when) if " " in when else None,
        "measurement_time": when[11:16] if " " in when else None,
        "measurement_type_concept_id": 32817,
        "operator_concept_id": operator,
        "value_as_number": number,
        "value_as_concept_id": value_concept,
        "unit_concept_id": unit,
        "range_low": low,
        "range_high": high,
        "visit_occurrence_id": visit,
        "measurement_source_value": source,
        "measurement_source_concept_id": 0,
        "unit_source_value": CONCEPTS[unit][5] if unit else None,
    }


MEASUREMENTS = [
    _measurement(1, 1, 3004410, "2023-03-01 09:15:00", 7.2, 8554, "A1C", visit=2, low=4.0, high=5.6),
    _measurement(2, 2, 3004410, "2023-02-03", 5.4, 8554, "A1C", low=4.0, high=5.6),
    _measurement(3, 1, 3004501, "2023-01-11 07:00:00", 98.6, 8840, "GLU", visit=1, low=70, high=99),
    _measurement(4, 3, 3004501, "2022-11-11", 40, 8840, "GLU", visit=4, operator=4171756),  # '< 40'
    _measurement(5, 1, 3004249, "2023-01-10 08:30:00", 120, 8876, "SBP", visit=1),
    _measurement(6, 1, 3012888, "2023-01-10 08:30:00", 80, 8876, "DBP", visit=1),
    _measurement(7, 2, 3004249, "2023-02-02 22:30:00", 145, 8876, "SBP", visit=3),
    _measurement(8, 2, 3012888, "2023-02-02 22:30:00", 95, 8876, "DBP", visit=3),
    _measurement(9, 4, 3027018, "2023-05-05", 72, 8541, "HR", visit=5),
    _measurement(10, 6, 3020891, "2021-08-01 09:20:00", 98.6, 9289, "TEMP", visit=7),
    _measurement(11, 9, 3025315, "2023-07-07 10:05:00", 70.5, 9529, "WT", visit=8),
    _measurement(12, 9, 3016407, "2023-07-07 10:10:00", None, 0, "UDS", visit=8, value_concept=45878583),  # a coded result
    _measurement(13, 6, 0, "2021-08-02", 3.1, 0, "LOCAL123", visit=7),  # nobody mapped this test
    _measurement(14, 3, 2000000001, "2022-11-11", 88, 8840, "LGLU", visit=4),  # a local code equal to a LOINC code
    _measurement(15, 5, 3004501, "2020-01-01", 5.4, 8840, "GLU", visit=6),
]
OBSERVATIONS = [
    {
        "observation_id": 1,
        "person_id": 1,
        "observation_concept_id": 40766362,
        "observation_date": _d("2023-03-01"),
        "observation_datetime": None,
        "observation_type_concept_id": 32817,
        "value_as_concept_id": 45883458,
        "value_as_string": None,
        "observation_source_value": "SMOKE",
        "visit_occurrence_id": 2,
    },
    {
        "observation_id": 2,
        "person_id": 9,
        "observation_concept_id": 40766362,
        "observation_date": _d("2023-07-07"),
        "observation_datetime": _dt("2023-07-07 10:02:00"),
        "observation_type_concept_id": 32817,
        "value_as_concept_id": None,
        "value_as_string": "quit last year",
        "observation_source_value": "SMOKE",
        "visit_occurrence_id": 8,
    },
]


def _condition(cid, pid, concept, source_concept, start, end=None, kind=32840, source=None, visit=None):
    return {
        "condition_occurrence_id": cid,
        "person_id": pid,
        "condition_concept_id": concept,
        "condition_start_date": _d(start[:10]),
        "condition_start_datetime": _dt(start) if " " in start else None,
        "condition_end_date": _d(end) if end else None,
        "condition_type_concept_id": kind,
        "visit_occurrence_id": visit,
        "condition_source_value": source,
        "condition_source_concept_id": source_concept,
    }


CONDITIONS = [
    _condition(1, 1, 201826, 45576876, "2015-04-01", source="E11.9"),
    _condition(2, 1, 320128, 45591029, "2016-06-01", end="2020-01-01", source="I10"),  # resolved
    _condition(3, 2, 201826, 35206882, "2019-09-09", source="E11.9"),  # coded in WHO ICD-10, not ICD-10-CM
    _condition(4, 3, 0, 0, "2022-11-11", kind=32817, source="OLD DX", visit=4),  # unmapped: the source text only
    _condition(5, 6, 320128, 45591029, "2021-08-01 10:00:00", kind=32817, source="I10", visit=7),
]


def _drug(did, pid, concept, start, kind=32838, sig=None, quantity=None, days=None, refills=None, stop=None, source=None, provider=None):
    return {
        "drug_exposure_id": did,
        "person_id": pid,
        "drug_concept_id": concept,
        "drug_exposure_start_date": _d(start[:10]),
        "drug_exposure_start_datetime": _dt(start) if " " in start else None,
        "drug_exposure_end_date": _d(start[:10]),
        "drug_type_concept_id": kind,
        "stop_reason": stop,
        "refills": refills,
        "quantity": quantity,
        "days_supply": days,
        "sig": sig,
        "route_concept_id": 4132161 if concept else None,
        "provider_id": provider,
        "drug_source_value": source,
        "drug_source_concept_id": 0,
    }


DRUGS = [
    _drug(1, 1, 1503297, "2015-04-02", sig="500 mg twice daily", quantity=60, days=30, refills=3, source="METFORMIN 500", provider=1),
    _drug(2, 1, 1308216, "2016-06-02 10:00:00", sig="10 mg daily", quantity=30, days=30, stop="cough", source="LISINOPRIL 10", provider=2),
    _drug(3, 2, 1503297, "2019-09-10", kind=32825, source="METFORMIN 500"),  # a pharmacy fill: not a prescription
    _drug(4, 6, 0, "2021-08-02", sig="one cup at night", source="HERBAL TEA", provider=2),  # unmapped drug
    _drug(5, 3, 1503297, "2022-11-12", kind=32825, source="METFORMIN 850"),
]
PROCEDURES = [
    {
        "procedure_occurrence_id": 1,
        "person_id": 1,
        "procedure_concept_id": 4230911,
        "procedure_date": _d("2023-01-11"),
        "procedure_datetime": None,
        "procedure_type_concept_id": 32817,
        "provider_id": 1,
        "visit_occurrence_id": 1,
        "procedure_source_value": "CXR",
        "procedure_source_concept_id": 0,
    },
    {
        "procedure_occurrence_id": 2,
        "person_id": 2,
        "procedure_concept_id": 2313814,
        "procedure_date": _d("2023-02-02"),
        "procedure_datetime": _dt("2023-02-02 23:00:00"),
        "procedure_type_concept_id": 32817,
        "provider_id": 1,
        "visit_occurrence_id": 3,
        "procedure_source_value": "93000",
        "procedure_source_concept_id": 2313814,
    },
]

CLINICAL = {
    "location": LOCATIONS,
    "care_site": CARE_SITES,
    "provider": PROVIDERS,
    "person": PERSONS,
    "death": DEATHS,
    "visit_occurrence": VISITS,
    "measurement": MEASUREMENTS,
    "observation": OBSERVATIONS,
    "condition_occurrence": CONDITIONS,
    "drug_exposure": DRUGS,
    "procedure_occurrence": PROCEDURES,
}


def rows() -> dict[str, list[dict]]:
    return {**_vocabulary_rows(), **CLINICAL}


def _sqlite_value(value: Any) -> Any:
    """How OHDSI's tools leave values in SQLite: dates as ISO text, datetimes (REAL columns) as Unix seconds."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).timestamp()
    if isinstance(value, date):
        return value.isoformat()
    return value


def _insert(connection: sa.Connection, engine_name: str) -> None:
    for table_name, table_rows in rows().items():
        columns = sorted({key for row in table_rows for key in row})
        table = sa.table(table_name, *(sa.column(c) for c in columns))
        values = [{c: row.get(c) for c in columns} for row in table_rows]
        if engine_name == "sqlite":
            values = [{k: _sqlite_value(v) for k, v in row.items()} for row in values]
        connection.execute(table.insert(), values)


def load(engine_name: str, url: str) -> None:
    """The official DDL, then the rows, into the (empty) database at ``url``."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        if engine_name == "sqlite":
            raw = engine.raw_connection()
            try:
                raw.driver_connection.executescript(render(official("OMOPCDM_sqlite_5.4_ddl.sql"), "main"))
                raw.driver_connection.executescript(official("OMOPCDM_sqlite_5.4_indices.sql"))
            finally:
                raw.close()
            with engine.begin() as connection:
                _insert(connection, engine_name)
        elif engine_name == "postgresql":
            schema = engine.url.query["options"].rpartition("search_path=")[2]
            with engine.begin() as connection:
                for name in ("OMOPCDM_postgresql_5.4_ddl.sql", "OMOPCDM_postgresql_5.4_primary_keys.sql"):
                    connection.exec_driver_sql(render(official(name), schema))
                _insert(connection, engine_name)
                for name in ("OMOPCDM_postgresql_5.4_constraints.sql", "OMOPCDM_postgresql_5.4_indices.sql"):
                    connection.exec_driver_sql(render(official(name), schema))
        else:
            _load_mariadb(engine)
    finally:
        engine.dispose()


def statements(script: str) -> list[str]:
    """A script's statements, one by one, as OHDSI's DatabaseConnector runs them (SqlRender's
    splitSql): MySQL reads ``--comment`` (no space) as SQL, so comments are left out."""
    script = re.sub(r"/\*.*?\*/", "", script, flags=re.S)
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _load_mariadb(engine: sa.Engine) -> None:
    import pymysql

    database = engine.url.database
    raw = pymysql.connect(
        host=engine.url.host,
        port=engine.url.port or 3306,
        user=engine.url.username,
        password=engine.url.password or "",
        database=database,
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
        charset="utf8mb4",
        autocommit=True,
    )
    try:
        with raw.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
            for name in ("OMOPCDM_sqlite_extended_5.4_ddl.sql", "OMOPCDM_sqlite_extended_5.4_indices.sql"):
                for statement in statements(render(official(name), database)):
                    cursor.execute(statement)
    finally:
        raw.close()
    with engine.begin() as connection:
        _insert(connection, "mariadb")
