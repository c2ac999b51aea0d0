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
    "bmi": ("wt_lb", "ht_in"),
    "bp": ("bp_sys", "bp_dia"),
}
_LIVE = "(%s.del_flg IS NULL OR %s.del_flg <> 'Y')"


def _marks(values) -> str:
    return ",".join("?" for _ in values)


def live_patient_ids(raw_db, guids) -> set[str]:
    guids = list(guids)
    sql = f"SELECT pt_guid FROM pt_master p WHERE pt_guid IN ({_marks(guids)}) AND {_LIVE % ('p', 'p')}"
    return {row[0] for row in raw_db.execute(sql, guids)}


def observation_ids_of(raw_db, patient_guids, since: str | None = None) -> set[str]:
    """Every Observation id (laboratory rows and vital-sign variants) of these patients;
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
    return ids


def patient_of_observations(raw_db, observation_ids) -> set[str]:
    """The patient guid of each Observation id (laboratory or vital-sign variant)."""
    ids = list(observation_ids)
    found = set()
    labs = [i for i in ids if len(i) == 36]
    if labs:
        sql = f"SELECT p.pt_guid FROM lab_result x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE x.res_guid IN ({_marks(labs)})"
        found |= {row[0] for row in raw_db.execute(sql, labs)}
    vitals = [i[:36] for i in ids if len(i) > 36]
    if vitals:
        sql = f"SELECT p.pt_guid FROM vitals x JOIN pt_master p ON x.pt_seq = p.pt_seq WHERE x.vs_guid IN ({_marks(vitals)})"
        found |= {row[0] for row in raw_db.execute(sql, vitals)}
    return found
