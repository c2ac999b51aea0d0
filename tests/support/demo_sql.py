"""Hand-written SQL over the demo legacy schema, for checking includes and $everything.

Written from the demo schema, not from the mapping engine, so a test comparing the
API with these answers can fail.
"""

from __future__ import annotations

# Vital-sign variants: the Observation id suffix and the legacy columns that must all hold a value.
VITAL_VARIANTS = {
    "pulse": ("pulse",),
    "resp": ("resp_rate",),
    "temp": ("temp_f",),
    "weight": ("wt_lb",),
    "height": ("ht_in",),
    "spo2": ("spo2",),
    "headcirc": ("head_circ_cm",),
    "bmi": ("wt_lb", "ht_in"),
    "bp": ("bp_sys", "bp_dia"),
    "bmiage": ("bmi_pctl",),
    "wtlen": ("wt_len_pctl",),
    "headpctl": ("hc_pctl",),
}
_LIVE = "(%s.del_flg IS NULL OR %s.del_flg <> 'Y')"
# One row, several Observations: (table, guid column, (id suffix, the answer's column)); the answers
# that make an Observation per table.
SOCIAL_VARIANTS = (
    ("ob_hx", "ob_guid", (("status", "preg_yn"), ("intent", "preg_intent"))),
    ("hvs_form", "hvs_guid", (("q1", "q1_ans"), ("q2", "q2_ans"))),
)
ANSWERS = {"ob_hx": ("Y", "N", "U"), "hvs_form": ("O", "S", "N", "R")}


def _marks(values) -> str:
    return ",".join("?" for _ in values)


def live_patient_ids(raw_db, guids) -> set[str]:
    guids = list(guids)
    sql = f"SELECT pt_guid FROM pt_master p WHERE pt_guid IN ({_marks(guids)}) AND {_LIVE % ('p', 'p')}"
    return {row[0] for row in raw_db.execute(sql, guids)}


def observation_ids_of(raw_db, patient_guids, since: str | None = None) -> set[str]:
    """Every Observation id (laboratory rows, vital-sign variants, smoking status, occupation, pregnancy,
    the Hunger Vital Sign) of these patients;
    ``since``: legacy ``upd_dttm`` text (YYYYMMDDhhmmss) lower bound, inclusive."""
    guids = list(patient_guids)
    if not guids:
        return set()
    bound = " AND x.upd_dttm >= ?" if since else ""
    extra = [since] if since else []
    labs = raw_db.execute(
        f"SELECT x.res_guid FROM lab_result x JOIN pt_master p ON x.pt_seq = p.pt_seq "
        f"WHERE p.pt_guid IN ({_marks(guids)}) AND {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}{bound}",
        guids + extra,
    )
    ids = {row[0] for row in labs}
    columns = sorted({c for cols in VITAL_VARIANTS.values() for c in cols})
    vitals = raw_db.execute(
        f"SELECT x.vs_guid, {', '.join('x.' + c for c in columns)} FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq "
        f"WHERE p.pt_guid IN ({_marks(guids)}) AND {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}{bound}",
        guids + extra,
    )
    for guid, *values in vitals:
        row = dict(zip(columns, values))
        for variant, required in VITAL_VARIANTS.items():
            if all(row[c] is not None and row[c] != "" for c in required):
                ids.add(f"{guid}-{variant}")
    smoking = raw_db.execute(  # smoking status: one Observation per social-history interview
        f"SELECT x.sh_guid FROM soc_hx x JOIN pt_master p ON x.pt_seq = p.pt_seq "
        f"WHERE p.pt_guid IN ({_marks(guids)}) AND {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}{bound}",
        guids + extra,
    )
    ids |= {row[0] for row in smoking}
    jobs = raw_db.execute(  # occupation: one per job with an occupation typed
        f"SELECT x.emp_guid FROM emp_hx x JOIN pt_master p ON x.pt_seq = p.pt_seq "
        f"WHERE p.pt_guid IN ({_marks(guids)}) AND {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}{bound} AND x.occ_desc <> ''",
        guids + extra,
    )
    ids |= {row[0] for row in jobs}
    for table, guid_column, variants in SOCIAL_VARIANTS:
        columns = sorted({c for _name, c in variants})
        rows = raw_db.execute(
            f"SELECT x.{guid_column}, {', '.join('x.' + c for c in columns)} FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq "
            f"WHERE p.pt_guid IN ({_marks(guids)}) AND {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}{bound}",
            guids + extra,
        )
        for guid, *values in rows:
            row = dict(zip(columns, values))
            answered = {name for name, column in variants if row[column] in ANSWERS[table]}
            if table == "hvs_form" and answered:
                answered.add("panel")  # the form's panel, when any question was answered
            ids |= {f"{guid}-{name}" for name in answered}
    return ids


# Compartment types kept one legacy row per resource: type → (table, guid column, Provenance id prefix,
# whether the row must also belong to a live visit). Observation and the Patient are handled apart.
ROW_TYPES = {
    "Encounter": [("enc_visit", "visit_guid", "enc", False)],
    "Condition": [("prob_list", "prob_guid", "prob", False), ("enc_dx", "dx_guid", "dx", True)],
    "MedicationRequest": [("rx_order", "rx_guid", "rx", False)],
    "AllergyIntolerance": [("allergy", "alg_guid", "alg", False)],
    "Immunization": [("immun", "imm_guid", "imm", False)],
    "Procedure": [("proc_log", "proc_guid", "proc", False)],
    "DiagnosticReport": [("lab_order", "ord_guid", "lab", False)],
}


# The later tables (legacy_adapters/sources/demo/records.py): type → (FROM/JOIN clause with the row
# as x and its patient as p, extra conditions, the id column, the id prefix, the Provenance prefix).
RECORD_TYPES = {
    "DocumentReference": ("note_hdr x JOIN note_txt b ON b.note_id = x.note_id", "", "x.note_guid", "", "note"),
    "CarePlan": ("care_plan x", "", "x.cp_guid", "", "cp"),
    "CareTeam": ("care_team x", "", "x.ct_guid", "", "ct"),
    "Goal": ("pt_goal x", "", "x.goal_guid", "", "goal"),
    "Device": ("implant x", "", "x.imp_guid", "", "imp"),
    "Coverage": ("ins_cov x", "", "x.cov_guid", "", "cov"),
    "MedicationDispense": (
        "rx_fill x JOIN rx_order o ON o.rx_id = x.rx_id",
        " AND (o.del_flg IS NULL OR o.del_flg <> 'Y')",
        "x.fill_guid",
        "",
        "fill",
    ),
    "ServiceRequest": ("ord_req x", "", "x.req_guid", "", "req"),
    "Specimen": ("lab_order x", "", "x.ord_guid", "spec-", None),
    "RelatedPerson": ("pt_nok x", " AND (x.nok_nm IS NOT NULL OR x.rel_cd IS NOT NULL)", "x.nok_guid", "", "nok"),
}


# Notes whose type is also a signed report: DiagnosticReport's second source (lab orders are a row type).
NOTE_REPORTS = "DiagnosticReport:note"
_RECORD_SOURCES = {
    **RECORD_TYPES,
    NOTE_REPORTS: (
        "note_hdr x JOIN note_txt b ON b.note_id = x.note_id JOIN note_typ_cd t ON t.note_typ = x.note_typ",
        " AND t.rpt_cat IS NOT NULL",
        "x.note_guid",
        "",
        "rpt",
    ),
}


def record_sql(resource_type: str, where: str = "1 = 1") -> str:
    """SELECT of (id, patient guid) of a later type's live rows meeting ``where`` (x is the row, p its patient)."""
    source, extra, column, prefix, _provenance = _RECORD_SOURCES[resource_type]
    return (
        f"SELECT '{prefix}' || {column} AS id, p.pt_guid AS patient FROM {source} JOIN pt_master p ON x.pt_seq = p.pt_seq "
        f"WHERE {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}{extra} AND ({where})"
    )


def _record_ids(raw_db, resource_type: str, guids: list[str], since: str | None) -> dict[str, str]:
    """id → its Provenance's id (None when the type has none)."""
    provenance = _RECORD_SOURCES[resource_type][4]
    where = f"p.pt_guid IN ({_marks(guids)})" + (" AND x.upd_dttm >= ?" if since else "")
    rows = raw_db.execute(record_sql(resource_type, where), guids + ([since] if since else []))
    return {i: (f"{provenance}-{i}" if provenance else None) for i, _p in rows}


def _row_guids(raw_db, table: str, column: str, in_visit: bool, guids: list[str], since: str | None) -> set[str]:
    visit = f" JOIN enc_visit e ON x.visit_no = e.visit_no AND {_LIVE % ('e', 'e')}" if in_visit else ""
    bound = " AND x.upd_dttm >= ?" if since else ""
    sql = (
        f"SELECT x.{column} FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq{visit} "
        f"WHERE p.pt_guid IN ({_marks(guids)}) AND {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}{bound}"
    )
    return {row[0] for row in raw_db.execute(sql, guids + ([since] if since else []))}


def compartment_ids_of(raw_db, patient_guids, since: str | None = None) -> dict[str, set[str]]:
    """Every resource id in these patients' compartments, per type (empty types left out)."""
    guids = list(patient_guids)
    bound = " AND p.upd_dttm >= ?" if since else ""
    patients = {
        row[0]
        for row in raw_db.execute(
            f"SELECT p.pt_guid FROM pt_master p WHERE p.pt_guid IN ({_marks(guids)}) AND {_LIVE % ('p', 'p')}{bound}",
            guids + ([since] if since else []),
        )
    }
    observations = observation_ids_of(raw_db, guids, since)
    found = {
        "Patient": patients,
        "Observation": observations,
        "Provenance": {f"pt-{i}" for i in patients} | {f"obs-{i}" for i in observations},
    }
    for resource_type, tables in ROW_TYPES.items():
        for table, column, prefix, in_visit in tables:
            ids = _row_guids(raw_db, table, column, in_visit, guids, since)
            found.setdefault(resource_type, set()).update(ids)
            found["Provenance"] |= {f"{prefix}-{i}" for i in ids}
    for source in _RECORD_SOURCES:
        records = _record_ids(raw_db, source, guids, since)
        found.setdefault(source.split(":")[0], set()).update(records)
        found["Provenance"] |= {p for p in records.values() if p}
    return {t: ids for t, ids in found.items() if ids}


def referenced_outside_compartment(raw_db, patient_guid: str) -> dict[str, set[str]]:
    """The Practitioners, Locations, Organizations and Medications a patient's record points at
    (through the reference parameters of its encounters, prescriptions and procedures)."""
    live = f"p.pt_guid = ? AND {_LIVE % ('x', 'x')} AND {_LIVE % ('p', 'p')}"
    of_patient = "JOIN pt_master p ON x.pt_seq = p.pt_seq"

    def ids(sql: str, times: int = 1) -> set[str]:
        return {row[0] for row in raw_db.execute(sql, [patient_guid] * times) if row[0] is not None}

    return {
        t: found
        for t, found in {
            "Practitioner": ids(
                f"SELECT s.dr_cd FROM staff s WHERE s.dr_cd IN ("
                f"SELECT x.attend_dr FROM enc_visit x {of_patient} WHERE {live} UNION "
                f"SELECT x.ordering_dr FROM rx_order x {of_patient} WHERE {live} UNION "
                f"SELECT x.perf_dr FROM proc_log x {of_patient} WHERE {live} UNION "
                f"SELECT x.auth_dr FROM note_hdr x {of_patient} JOIN note_txt b ON b.note_id = x.note_id WHERE {live} UNION "
                f"SELECT x.ord_dr FROM ord_req x {of_patient} WHERE {live})",
                5,
            ),
            "Location": ids(
                f"SELECT l.dept_cd FROM dept_loc l WHERE l.dept_cd IN (SELECT x.dept_cd FROM enc_visit x {of_patient} WHERE {live})"
            ),
            "Organization": ids(
                f"SELECT g.org_cd FROM org_mstr g WHERE g.org_cd IN (SELECT l.org_cd FROM enc_visit x {of_patient} "
                f"JOIN dept_loc l ON x.dept_cd = l.dept_cd WHERE {live})"
            )
            | ids(  # insurers, through Coverage.payor
                f"SELECT 'PAYER-' || y.payer_cd FROM payer_mstr y WHERE y.payer_cd IN (SELECT x.payer_cd FROM ins_cov x {of_patient} WHERE {live})"
            ),
            "Medication": ids(
                f"SELECT m.med_cd FROM med_cd m WHERE m.med_cd IN (SELECT x.med_cd FROM rx_order x {of_patient} WHERE {live} UNION "
                f"SELECT o.med_cd FROM rx_fill x {of_patient} JOIN rx_order o ON o.rx_id = x.rx_id "
                f"AND (o.del_flg IS NULL OR o.del_flg <> 'Y') WHERE {live})",
                2,
            ),
        }.items()
        if found
    }


def patient_of_observations(raw_db, observation_ids) -> set[str]:
    """The patient guid of each Observation id (laboratory, smoking status or vital-sign variant)."""
    ids = list(observation_ids)
    found = set()
    labs = [i for i in ids if len(i) == 36]
    if labs:
        for table, column in (("lab_result", "res_guid"), ("soc_hx", "sh_guid"), ("emp_hx", "emp_guid")):
            sql = f"SELECT p.pt_guid FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE x.{column} IN ({_marks(labs)})"
            found |= {row[0] for row in raw_db.execute(sql, labs)}
    vitals = [i[:36] for i in ids if len(i) > 36]
    if vitals:
        for table, column in (("vitals", "vs_guid"), ("ob_hx", "ob_guid"), ("hvs_form", "hvs_guid")):
            sql = f"SELECT p.pt_guid FROM {table} x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE x.{column} IN ({_marks(vitals)})"
            found |= {row[0] for row in raw_db.execute(sql, vitals)}
    return found
