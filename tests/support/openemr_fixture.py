"""OpenEMR's real DDL, loaded unmodified into a MariaDB database of its own, plus synthetic rows.

The DDL (``openemr_subset.sql``, from OpenEMR's ``sql/database.sql``) lives in the shared
reference folder beside the repository; :func:`openemr_ddl_path` finds it or says why not.
Tables that subset lacks are copied unmodified from the same ``database.sql`` into
``openemr_subset_extra.sql`` beside this module, and loaded after it.
The rows are small and hand-written so every edge case is visible here: zero dates
('0000-00-00'), NULL and empty values, mixed-system and unmapped diagnosis strings,
rows OpenEMR has not given a uuid yet, deleted forms and orders, inactive users.
Only this fixture writes to the database; the façade reads it through a read-only engine.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pymysql
import sqlalchemy as sa

_REPO = Path(__file__).resolve().parents[2]
_CANDIDATES = [_REPO.parent / "shared", Path("/work/shared")]
EXTRA_DDL = Path(__file__).with_name("openemr_subset_extra.sql")
MAPPING = str(_REPO / "legacy_adapters" / "sources" / "openemr" / "mapping.yaml")  # the shipped OpenEMR mapping


def openemr_ddl_path() -> Path | None:
    for shared in _CANDIDATES:
        path = shared / "reference" / "openemr" / "openemr_subset.sql"
        if path.is_file():
            return path
    return None


def uid(name: str) -> uuid.UUID:
    """A fixed uuid per fixture row name, so ids are the same on every run."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"urn:fhir-facade-test:openemr:{name}")


def b(name: str) -> bytes:
    return uid(name).bytes


def text_id(name: str) -> str:
    return str(uid(name))


# Patients: pid → (uuid name or None, fname, lname, sex, DOB, pubpid)
PATIENTS = [
    (1, "pat-jane", "Jane", "Doe", "Female", "1970-01-31", "MRN0001"),
    (2, "pat-john", "John", "Smith", "Male", "0000-00-00", "mrn0002"),  # zero date; lower-case External ID
    (3, "pat-kim", "Kim", "Lee", "", None, "MRN0003"),  # no sex, no DOB
    (4, None, "Nouuid", "Yet", "Female", "1980-05-05", "MRN0004"),  # uuid not backfilled: not served
    (5, "pat-zoe", "Zoë", "Brontë", "Female", "2001-12-24", "MRN0005"),
    (6, "", "Zero", "Uuid", "Male", "1990-01-01", "MRN0006"),  # '' in binary(16): sixteen zero bytes, no uuid
]

# patient_data.status and .language hold list_options option_ids ('decline_to_specify' has no code)
MARITAL = {1: "married", 2: "single", 5: "domestic partner"}
LANGUAGE = {1: "English", 2: "Spanish", 3: "decline_to_specify", 5: "English"}
# patient_data.occupation and .industry as typed on the demographics screen: both, occupation alone,
# an empty occupation with an industry (no Observation), nothing at all (NULL)
OCCUPATION = {
    1: ("Registered nurse", "General medical and surgical hospitals"),
    2: ("Retired", ""),
    3: ("", "Construction"),
    4: ("Teacher", "Education"),
}

VITAL_COLUMNS = (
    "pulse",
    "respiration",
    "temperature",
    "weight",
    "height",
    "head_circ",
    "BMI",
    "oxygen_saturation",
    "oxygen_flow_rate",
    "inhaled_oxygen_concentration",
    "ped_bmi",
    "ped_head_circ",
    "ped_weight_height",
)


def load(admin_url: str, database: str, ddl: Path) -> str:
    """Create ``database``, load the DDL as it is, insert the rows; return the database's URL."""
    url = sa.engine.make_url(admin_url)
    connection = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
        charset="utf8mb4",
        autocommit=True,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cursor.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
            cursor.execute(f"USE `{database}`")
            for script in (ddl, EXTRA_DDL):
                cursor.execute(script.read_text(encoding="utf-8"))
                while cursor.nextset():  # run every statement of the multi-statement script
                    pass
            _insert_rows(cursor)
    finally:
        connection.close()
    return url.set(database=database).render_as_string(hide_password=False)


def drop(admin_url: str, database: str) -> None:
    engine = sa.create_engine(admin_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
    engine.dispose()


def _insert(cursor, into: str, /, **values) -> None:
    columns = ", ".join(f"`{c}`" for c in values)
    marks = ", ".join(["%s"] * len(values))
    cursor.execute(f"INSERT INTO `{into}` ({columns}) VALUES ({marks})", list(values.values()))


def _insert_rows(cursor) -> None:
    # users: a physician, an address-book entry (not a practitioner), an inactive user
    _insert(
        cursor,
        "users",
        id=1,
        uuid=b("user-house"),
        username="ghouse",
        fname="Gregory",
        lname="House",
        npi="1234567893",
        active=1,
        abook_type="",
        title="Dr.",
    )
    _insert(
        cursor,
        "users",
        id=2,
        uuid=b("user-lab"),
        username="",
        fname="",
        lname="",
        organization="Acme Labs",
        npi="",
        active=1,
        abook_type="ord_lab",
    )
    _insert(cursor, "users", id=3, uuid=b("user-old"), username="oldnurse", fname="Old", lname="Nurse", npi=None, active=0, abook_type="")
    # facilities: the seeded row (id 3, no uuid) stays; one more with a Location id in uuid_mapping
    _insert(
        cursor,
        "facility",
        id=4,
        uuid=b("fac-main"),
        name="Main Street Clinic",
        phone="555-0100",
        city="Springfield",
        state="IL",
        postal_code="62701",
        country_code="US",
        facility_npi="1999999984",
        inactive=0,
    )
    _insert(cursor, "uuid_mapping", uuid=b("loc-main"), resource="Location", table="facility", target_uuid=b("fac-main"))

    for pid, name, fname, lname, sex, dob, pubpid in PATIENTS:
        _insert(
            cursor,
            "patient_data",
            id=pid,
            pid=pid,
            uuid=b(name) if name else name,
            fname=fname,
            lname=lname,
            sex=sex,
            DOB=dob,
            pubpid=pubpid,
            ss=f"000-00-000{pid}",
            phone_home="555-010" + str(pid),
            street=f"{pid} Main St",
            city="Springfield",
            state="IL",
            postal_code="62701",
            last_updated="2024-05-01 12:00:00",
            status=MARITAL.get(pid, ""),
            language=LANGUAGE.get(pid, ""),
            occupation=OCCUPATION.get(pid, (None, None))[0],
            industry=OCCUPATION.get(pid, (None, None))[1],
        )

    # encounters: (id, uuid name, pid, encounter number, date, date_end, class)
    for eid, name, pid, number, date, end, klass in [
        (1, "enc-1", 1, 100, "2024-03-01 09:00:00", "2024-03-01 09:30:00", "AMB"),
        (2, "enc-2", 1, 101, "2024-06-15 14:00:00", None, "EMER"),
        (3, "enc-3", 2, 102, "2023-11-20 08:15:00", None, "AMB"),
        (4, "enc-4", 5, 103, "0000-00-00 00:00:00", None, "AMB"),
    ]:
        _insert(
            cursor,
            "form_encounter",
            id=eid,
            uuid=b(name),
            pid=pid,
            encounter=number,
            date=date,
            date_end=end,
            class_code=klass,
            provider_id=1 if eid != 3 else 0,
            facility_id=4,
            reason=f"Visit {number}",
        )

    # vitals: (form_vitals id, uuid name, pid, encounter, date, values, form deleted?)
    full = dict(
        pulse=72,
        respiration=16,
        temperature=98.6,
        weight=150.5,
        height=65,
        head_circ=0,
        BMI=25.04,
        oxygen_saturation=98,
        oxygen_flow_rate=0,
        inhaled_oxygen_concentration=0,
        ped_bmi=0,
        ped_head_circ=0,
        ped_weight_height=0,
        bps="120",
        bpd="80",
    )
    for vid, name, pid, encounter, date, values, deleted in [
        (1, "vit-1", 1, 100, "2024-03-01 09:05:00", full, 0),
        (2, "vit-2", 1, 101, "2024-06-15 14:10:00", dict(pulse=88, bps="", bpd=""), 0),  # only a pulse
        (3, "vit-3", 1, 100, "2024-03-01 09:20:00", dict(pulse=60, weight=149), 1),  # form deleted
        (4, "vit-4", 2, 102, "0000-00-00 00:00:00", dict(pulse=70, temperature=99.1, bps="130", bpd="85"), 0),  # zero date
        (
            5,
            "vit-5",
            5,
            103,
            "2024-01-10 10:00:00",
            dict(weight=120, height=0, ped_bmi=55.5, oxygen_flow_rate=2, inhaled_oxygen_concentration=28),
            0,
        ),
        (6, None, 1, 100, "2024-03-02 10:00:00", dict(pulse=99), 0),  # no uuid yet
        (7, "vit-7", 6, None, "2024-03-03 10:00:00", dict(pulse=66), 0),  # patient without a uuid
    ]:
        row = {column: 0 for column in VITAL_COLUMNS}
        row.update(values)
        _insert(cursor, "form_vitals", id=vid, uuid=b(name) if name else None, date=date, pid=pid, user="ghouse", activity=1, **row)
        _insert(
            cursor,
            "forms",
            date=date,
            encounter=encounter,
            form_name="Vitals",
            form_id=vid,
            pid=pid,
            user="ghouse",
            deleted=deleted,
            formdir="vitals",
        )
    # another form type whose form_id collides with a vitals row: must not join as vitals
    _insert(
        cursor,
        "forms",
        date="2024-03-01 09:00:00",
        encounter=100,
        form_name="New Patient Encounter",
        form_id=1,
        pid=1,
        formdir="newpatient",
    )

    # the issues list: (uuid name, pid, type, title, diagnosis, begdate, enddate, occurrence, outcome, verification)
    for name, pid, kind, title, diagnosis, begdate, enddate, occurrence, outcome, verification in [
        ("cond-dm", 1, "medical_problem", "Diabetes", "ICD10:E11.9;SNOMED-CT:44054006", "2015-04-01 00:00:00", None, 0, 0, "confirmed"),
        ("cond-htn-old", 1, "medical_problem", "Hypertension", "ICD10:I10", "2010-01-01 00:00:00", "2019-01-01 00:00:00", 0, 0, ""),
        (
            "cond-htn",
            2,
            "medical_problem",
            "Essential hypertension",
            "SNOMED-CT:38341003;ICD10:I10",
            "2020-02-02 00:00:00",
            None,
            1,
            0,
            "unconfirmed",
        ),
        ("cond-local", 2, "medical_problem", "Local problem", "LOCAL:XYZ-1", "0000-00-00 00:00:00", "0000-00-00 00:00:00", 0, 0, ""),
        ("cond-text", 5, "medical_problem", "Back pain", None, None, None, 3, 0, ""),  # no codes: title only; recurrence
        ("cond-resolved", 5, "medical_problem", "Flu", "ICD10:J11.1", "2023-01-05 00:00:00", None, 0, 1, ""),
        ("cond-i10x", 3, "medical_problem", "Not I10", "ICD10:I10.9;CPT4:99213", "2022-01-01 00:00:00", None, 0, 0, ""),
        ("cond-case", 3, "medical_problem", "Lower case code", "icd10:e11.9", "2022-01-01 00:00:00", None, 0, 0, ""),
        (None, 1, "medical_problem", "No uuid yet", "ICD10:I10", None, None, 0, 0, ""),
        ("alg-pcn", 1, "allergy", "Penicillin", "RXCUI:7980", "2000-01-01 00:00:00", None, 0, 0, "confirmed"),
        ("alg-old", 2, "allergy", "Latex", "SNOMED-CT:1003755004", None, "2018-06-01 00:00:00", 0, 0, ""),
        ("alg-text", 5, "allergy", "Cats", "", None, None, 0, 0, ""),
        ("surg-appy", 1, "surgery", "Appendectomy", "CPT4:44950;SNOMED-CT:80146002", "1995-07-01 00:00:00", None, 0, 0, ""),
        ("surg-knee", 2, "surgery", "Knee arthroscopy", "", "0000-00-00 00:00:00", None, 0, 0, ""),
        ("med-list", 1, "medication", "Aspirin (patient reported)", "RXCUI:1191", None, None, 0, 0, ""),
        ("med-linked", 1, "medication", "Metformin 500 MG", "", None, None, 0, 0, ""),  # its prescription is served
        ("med-ended", 2, "medication", "Ibuprofen", "", None, "2023-05-01 00:00:00", 0, 0, ""),
    ]:
        _insert(
            cursor,
            "lists",
            uuid=b(name) if name else None,
            date="2024-02-01 08:00:00",
            type=kind,
            title=title,
            diagnosis=diagnosis,
            begdate=begdate,
            enddate=enddate,
            occurrence=occurrence,
            outcome=outcome,
            verification=verification,
            pid=pid,
            activity=1,
            user="ghouse",
        )

    cursor.execute("UPDATE lists SET activity = 0 WHERE uuid = %s", [b("med-ended")])
    cursor.execute(
        "INSERT INTO lists_medication (list_id, usage_category_title, request_intent, request_intent_title, "
        "prescription_id, drug_dosage_instructions) SELECT id, '', 'order', '', 1, NULL FROM lists WHERE uuid = %s",
        [b("med-linked")],
    )
    cursor.execute(
        "INSERT INTO lists_medication (list_id, usage_category_title, request_intent, request_intent_title, "
        "drug_dosage_instructions) SELECT id, '', NULL, '', 'One at night' FROM lists WHERE uuid = %s",
        [b("med-list")],
    )

    # labs: order → report → results. (order id, uuid, pid, encounter, activity)
    for order_id, name, pid, encounter, activity in [(1, "ord-1", 1, 100, 1), (2, "ord-2", 2, 102, 1), (3, "ord-del", 1, 100, 0)]:
        _insert(
            cursor,
            "procedure_order",
            procedure_order_id=order_id,
            uuid=b(name),
            patient_id=pid,
            encounter_id=encounter,
            provider_id=1,
            date_ordered="2024-03-01 09:00:00",
            activity=activity,
        )
        _insert(
            cursor,
            "procedure_order_code",
            procedure_order_id=order_id,
            procedure_order_seq=1,
            procedure_code="GLU",
            procedure_name="Glucose",
        )
    for report_id, name, order_id, reported in [
        (1, "rep-1", 1, "2024-03-02 10:00:00"),
        (2, "rep-2", 2, "2023-11-21 07:30:00"),
        (3, "rep-del", 3, "2024-03-02 11:00:00"),
    ]:
        _insert(
            cursor,
            "procedure_report",
            procedure_report_id=report_id,
            uuid=b(name),
            procedure_order_id=order_id,
            date_collected=reported,
            date_report=reported,
            report_status="complete",
        )
    for name, report_id, code, text, result, units, abnormal, status in [
        ("res-glu", 1, "2345-7", "Glucose", "105", "mg/dL", "high", "final"),
        ("res-hcg", 1, "2106-3", "HCG qualitative", "Negative", "", "no", "final"),
        ("res-pending", 1, "4548-4", "Hemoglobin A1c", "", "%", "", "preliminary"),
        ("res-odd", 1, "718-7", "Hemoglobin", "13.2", "g/dL", "", "weird-status"),
        ("res-glu-2", 2, "2345-7", "Glucose", "<40", "mg/dL", "vlow", "corrected"),
        ("res-del", 3, "2345-7", "Glucose", "99", "mg/dL", "", "final"),  # its order was deleted
    ]:
        _insert(
            cursor,
            "procedure_result",
            uuid=b(name),
            procedure_report_id=report_id,
            result_code=code,
            result_text=text,
            result=result,
            units=units,
            abnormal=abnormal,
            result_status=status,
            range="70-99" if code == "2345-7" else "",
        )

    # prescriptions: (uuid name, pid, rxnorm, drug, active, end_date, intent)
    for name, pid, rxnorm, drug, active, end_date, intent in [
        ("rx-metformin", 1, "860975", "Metformin 500 MG", 1, None, "order"),
        ("rx-amox", 1, "308182", "Amoxicillin 500 MG", 1, "2024-01-10", None),
        ("rx-stopped", 2, "197361", "Amlodipine 5 MG", 0, None, "plan"),
        ("rx-zero-end", 5, None, "Herbal tea", 1, "0000-00-00", "nonsense"),
    ]:
        _insert(
            cursor,
            "prescriptions",
            uuid=b(name),
            patient_id=pid,
            date_added="2024-01-01 10:00:00",
            provider_id=1,
            encounter=100 if pid == 1 else None,
            drug=drug,
            rxnorm_drugcode=rxnorm,
            active=active,
            end_date=end_date,
            txDate="2024-01-01",
            usage_category_title="",
            request_intent=intent,
            request_intent_title="",
            drug_dosage_instructions="Take one daily" if pid == 1 else None,
        )

    # immunizations: (uuid name, pid, cvx, date, completion, erroneous)
    for name, pid, cvx, date, completion, erroneous in [
        ("imm-flu", 1, "141", "2023-10-01 10:00:00", "Completed", 0),
        ("imm-old", 1, "03", "1971-06-01 00:00:00", None, 0),  # before completion_status existed
        ("imm-refused", 2, "208", "2021-05-01 00:00:00", "Not Administered", 0),
        ("imm-error", 2, "141", "2022-10-01 00:00:00", "Completed", 1),
        ("imm-nodate", 5, None, None, "Completed", 0),  # no vaccine code, no date
    ]:
        _insert(
            cursor,
            "immunizations",
            uuid=b(name),
            patient_id=pid,
            cvx_code=cvx,
            administered_date=date,
            completion_status=completion,
            added_erroneously=erroneous,
            administered_by_id=1,
            lot_number="LOT-" + name,
            update_date="2024-01-01 00:00:00",
            create_date=date,
        )
    _insert_uscore_rows(cursor)
    _insert_insurance_rows(cursor)
    _insert_order_rows(cursor)
    _insert_guardian_and_role_rows(cursor)


def _insert_uscore_rows(cursor) -> None:
    """Rows behind the later US Core types: clinical notes and implanted devices."""
    # clinical notes: (uuid name, pid, encounter, user, code, codetext, type, text, activity)
    # (uuid name, pid, encounter, user, code, codetext, type, category (a report's: cardiology, pathology, radiology), text, activity)
    for form_id, (name, pid, encounter, user, code, codetext, kind, category, text, activity) in enumerate(
        [
            (
                "note-progress",
                1,
                "100",
                "ghouse",
                "LOINC:11506-3",
                "Progress note",
                "progress_note",
                "",
                "BP controlled & stable.\nRTC 3 mo.",
                1,
            ),
            ("note-untyped", 2, "102", "ghouse", "", "", "evaluation_note", "", "Évaluation: patiente en forme.", 1),
            ("note-deleted", 1, "100", "ghouse", "LOINC:11506-3", "Progress note", "progress_note", "", "Wrong chart.", 0),
            ("note-empty", 5, "103", "oldnurse", "LOINC:11488-4", "Consult note", "consultation_note", "", None, 1),
            (None, 1, "101", "ghouse", "LOINC:11488-4", "Consult note", "consultation_note", "", "No uuid yet.", 1),
            (
                "note-imaging",
                1,
                "100",
                "ghouse",
                "LOINC:18748-4",
                "Diagnostic imaging study",
                "imaging_narrative",
                "radiology",
                "CXR PA & LAT: no acute process.",
                1,
            ),
            (
                "note-path",
                2,
                "102",
                "ghouse",
                "LOINC:11526-1",
                "Pathology study",
                "pathology_report_narrative",
                "pathology",
                "Benign mucosa.",
                1,
            ),
            ("note-ecg-deleted", 2, "102", "ghouse", "LOINC:11524-6", "EKG study", "", "cardiology", "Wrong patient.", 0),
        ],
        start=1,
    ):
        _insert(
            cursor,
            "form_clinical_notes",
            form_id=form_id,
            uuid=b(name) if name else None,
            date="2024-03-01",
            pid=pid,
            encounter=encounter,
            user=user,
            activity=activity,
            code=code,
            codetext=codetext,
            description=text,
            clinical_notes_type=kind,
            clinical_notes_category=category,
            last_updated="2024-03-01 10:00:00",
        )
    # implanted devices: lists rows of type medical_device (uuid name, pid, title, codes, udi, end date)
    for name, pid, title, diagnosis, udi, enddate in [
        ("dev-pacer", 1, "Cardiac pacemaker", "SNOMED-CT:14106009", "(01)00643169007222(17)260100(10)A1234(21)SN999", None),
        ("dev-hip", 2, "Hip prosthesis", "", None, "2023-01-01 00:00:00"),
        ("dev-zero", 5, "Insulin pump", "", "(01)10884521062856", "0000-00-00 00:00:00"),
    ]:
        _insert(
            cursor,
            "lists",
            uuid=b(name),
            date="2022-05-01 08:00:00",
            type="medical_device",
            title=title,
            diagnosis=diagnosis,
            udi=udi,
            begdate="2022-05-01 00:00:00",
            enddate=enddate,
            pid=pid,
            activity=1,
            user="ghouse",
        )


def _insert_insurance_rows(cursor) -> None:
    """Payers (insurance_companies) and the patients' policies (insurance_data)."""
    # payers: (id, uuid name or None, name, ins_type_code, cqm_sop, inactive)
    for company_id, name, title, type_code, sop, inactive in [
        (1, "ins-acme", "Acme Health", 11, 5, 0),  # a PPO; SOP 5 private health insurance
        (2, "ins-medicare", "Medicare", 2, 1, 0),
        (3, None, "Not Yet Backfilled", 17, None, 0),  # no uuid: its policies are not served
        (4, "ins-closed", "Closed Mutual", None, None, 1),  # inactive, no type
    ]:
        _insert(
            cursor,
            "insurance_companies",
            id=company_id,
            uuid=b(name) if name else None,
            name=title,
            cms_id=f"CMS{company_id:03d}",
            ins_type_code=type_code,
            cqm_sop=sop,
            inactive=inactive,
            last_updated="2024-02-01 08:00:00",
        )
    # policies: (uuid name or None, pid, type, provider, plan, policy, group, relationship, start, end)
    for name, pid, kind, provider, plan, policy, group, relationship, start, end in [
        ("cov-jane-1", 1, "primary", "1", "Gold PPO", "ACM-1001", "GRP-77", "self", "2023-01-01", None),
        ("cov-jane-2", 1, "secondary", "2", "", "1EG4-TE5-MK72", "", "spouse", "2020-01-01", "2022-12-31"),
        ("cov-john-1", 2, "primary", "4", "Basic", "CM-9", "", "child", "2021-06-01", None),
        ("cov-john-2", 2, "secondary", "", "", "", "", "", None, None),  # the empty slot OpenEMR's form saves
        ("cov-kim-1", 3, "primary", "1", "Silver", "", "", "", "2024-01-01", None),  # no member id: no profile claim
        ("cov-zoe-1", 5, "primary", "3", "Plan", "X-1", "", "self", "2024-01-01", None),  # payer without uuid
        (None, 5, "secondary", "1", "Plan", "X-2", "", "self", "2024-01-01", None),  # no uuid yet
    ]:
        _insert(
            cursor,
            "insurance_data",
            uuid=b(name) if name else None,
            type=kind,
            provider=provider,
            plan_name=plan,
            policy_number=policy,
            group_number=group,
            subscriber_relationship=relationship,
            date=start,
            date_end=end,
            pid=pid,
        )


def _insert_order_rows(cursor) -> None:
    """Orders behind ServiceRequest (one per procedure_order_code line), a lab compendium
    (procedure_type), and a lab report without a collection date."""
    # compendium: (lab, code, type, standard code, name). The same code at another lab, and a
    # group row sharing an order code, must not join as the order's entry.
    for lab, code, kind, standard, name in [
        (7, "XR-CHEST", "ord", "CPT4:71046", "Chest X-ray 2 views"),
        (7, "XR-CHEST", "grp", "CPT4:70000", "Chest imaging"),
        (8, "XR-CHEST", "ord", "CPT4:71045", "Chest X-ray 1 view"),
        (7, "ECHO", "ord", "CPT4:93306", "Echocardiogram"),
        (0, "COLO", "ord", "SNOMED-CT:73761001", "Colonoscopy"),
    ]:
        _insert(cursor, "procedure_type", lab_id=lab, procedure_code=code, procedure_type=kind, standard_code=standard, name=name)
    # orders: (id, pid, encounter, provider, ordered, order type, status, priority, intent, lab, activity,
    #          lines [(seq, code, name, diagnoses)])
    for order_id, pid, encounter, provider, ordered, kind, status, priority, intent, lab, activity, lines in [
        (
            10,
            1,
            100,
            1,
            "2024-01-05 08:00:00",
            "laboratory_test",
            "complete",
            "normal",
            "order",
            0,
            1,
            [
                (1, "GLU", "Glucose", "ICD10:E11.9"),
                (2, "HGBA1C", "Hemoglobin A1c", "ICD10:E11.9;ICD10:I10;SNOMED-CT:44054006;ICD10:Z00.00;LOCAL:X1"),
            ],
        ),
        (11, 1, 101, 3, "2024-06-15 14:30:00", "imaging", "pending", "high", "", 7, 1, [(1, "XR-CHEST", "Chest X-ray", "ICD10:R05.9")]),
        (12, 1, 0, 0, "2023-02-01 10:00:00", "clinical_test", "routed", "stat", "plan", 7, 1, [(1, "ECHO", "", None)]),  # no encounter
        (13, 1, 100, 1, "2022-07-07 07:07:00", "procedure", "canceled", "", "proposal", 0, 1, [(1, "COLO", "Colonoscopy", "")]),
        (14, 1, 100, 1, None, "laboratory_test", "", "", "order", 0, 1, [(1, "CBC", "Complete blood count", None)]),  # no date
        (15, 1, 101, 1, "2024-09-09 09:00:00", "referral", "weird", "", "nonsense", 0, 1, [(1, "REF1", "Cardiology referral", None)]),
        (16, 2, 102, 1, "2023-11-20 08:30:00", "laboratory_test", "complete", "", "order", 0, 1, [(1, "GLU", "Glucose", None)]),
        (17, 1, 100, 1, "2024-02-02 08:00:00", "laboratory_test", "pending", "", "order", 0, 0, [(1, "GLU", "Glucose", None)]),  # deleted
        (18, 4, 0, 1, "2024-02-02 08:00:00", "laboratory_test", "pending", "", "order", 0, 1, [(1, "GLU", "Glucose", None)]),  # no uuid
        (19, 1, 101, 1, "2024-07-01 12:00:00", "imaging", "complete", "", "order", 8, 1, [(1, "XR-CHEST", "Chest X-ray", None)]),
        (
            20,
            5,
            103,
            1,
            "2024-01-10 10:00:00",
            "laboratory_test",
            "complete",
            "",
            "order",
            0,
            1,
            [(1, "CBC", "Complete blood count", "ICD10:E11.9")],
        ),
    ]:
        _insert(
            cursor,
            "procedure_order",
            procedure_order_id=order_id,
            uuid=b(f"ord-{order_id}"),
            patient_id=pid,
            encounter_id=encounter,
            provider_id=provider,
            date_ordered=ordered,
            procedure_order_type=kind,
            order_status=status,
            order_priority=priority,
            order_intent=intent,
            lab_id=lab,
            activity=activity,
            patient_instructions="Fast for 8 hours" if order_id == 10 else None,
        )
        for seq, code, name, diagnoses in lines:
            _insert(
                cursor,
                "procedure_order_code",
                procedure_order_id=order_id,
                procedure_order_seq=seq,
                procedure_code=code,
                procedure_name=name,
                diagnoses=diagnoses,
            )
    # a report whose specimen has a zero collection date: US Core's date is then data-absent
    _insert(
        cursor,
        "procedure_report",
        procedure_report_id=20,
        uuid=b("rep-undated"),
        procedure_order_id=20,
        procedure_order_seq=1,
        date_collected="0000-00-00 00:00:00",
        report_status="received",
    )


# guardians: pid → (name, relationship option id, sex, phone, email, city). Patient 3's guardian slot
# holds an empty name (not served); patient 4 has no uuid yet, patient 6 sixteen zero bytes (not
# served); "other" has no RoleCode.
GUARDIANS = {
    1: ("Mary Doe", "mother", "Female", "555-0201", "mary@example.org", "Springfield"),
    2: ("Robert Smith", "father", "Male", "555-0202", None, "Shelbyville"),
    3: ("", "spouse", "", None, None, None),
    4: ("Hidden Guardian", "mother", "Female", "555-0204", None, None),
    5: ("Ann Brontë", "other", "", None, "ann@example.org", None),
    6: ("Zero Guardian", "father", "Male", None, None, None),
}
# part of OpenEMR's list next_of_kin_relationship as it seeds it: option id, title, HL7 v2 0063 code
NEXT_OF_KIN = [("father", "Father", "FTH"), ("mother", "Mother", "MTH"), ("other", "Other", "OTH"), ("spouse", "Spouse", "SPO")]


def _insert_guardian_and_role_rows(cursor) -> None:
    """Guardians (patient_data's guardian columns) and practitioners' facilities and specialties."""
    _insert(cursor, "list_options", list_id="lists", option_id="next_of_kin_relationship", title="Next of Kin Relationship")
    for seq, (option, title, code) in enumerate(NEXT_OF_KIN, start=1):
        _insert(cursor, "list_options", list_id="next_of_kin_relationship", option_id=option, title=title, seq=seq * 10, notes=code)
    for pid, (name, relationship, sex, phone, email, city) in GUARDIANS.items():
        cursor.execute(
            "UPDATE patient_data SET guardiansname = %s, guardianrelationship = %s, guardiansex = %s, guardianphone = %s, "
            "guardianemail = %s, guardianaddress = %s, guardiancity = %s, guardianstate = %s, guardianpostalcode = %s WHERE pid = %s",
            [
                name,
                relationship,
                sex,
                phone,
                email,
                f"{pid} Elm St" if city else None,
                city,
                "IL" if city else None,
                "62701" if city else None,
                pid,
            ],
        )
    cursor.execute("UPDATE patient_data SET guardianworkphone = '555-0301' WHERE pid = 1")
    # users: Dr House works at the clinic (the facility's phone is his contact); more practitioners
    cursor.execute("UPDATE users SET facility_id = 4, specialty = 'Diagnostic medicine', taxonomy = '207R00000X' WHERE id = 1")
    for user_id, name, fname, lname, taxonomy, specialty, facility_id, phone in [
        (4, "user-peds", "Paula", "Peds", "208000000X", "Pediatrics", 4, "555-0400"),
        (5, "user-fp", "Frank", "Family", "207Q00000X", None, 3, "555-0500"),  # the seeded facility: no uuid, no organization
        (6, "user-np", "Nina", "Nurse", "363L00000X", "Nurse practitioner", 0, None),  # no facility, no phone: no claim
    ]:
        _insert(
            cursor,
            "users",
            id=user_id,
            uuid=b(name),
            username=name,
            fname=fname,
            lname=lname,
            npi=f"10000000{user_id}0",
            active=1,
            abook_type="",
            taxonomy=taxonomy,
            specialty=specialty,
            facility_id=facility_id,
            phone=phone,
        )
