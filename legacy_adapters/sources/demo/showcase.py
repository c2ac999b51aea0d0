"""A demo patient worth looking at first: one whose record has something in every clinical
table (visits, labs, vital signs, problems, prescriptions, allergies, immunizations, procedures,
smoking status), so every example of the tour answers with data.

Chosen by the data, not by a fixed id, so it holds for any demo size and seed; the same
database always gives the same patient.
"""

from __future__ import annotations

import sqlalchemy as sa

# Each table's rows for one patient, by the patient's sequence number; soft-deleted rows do not count.
CLINICAL_TABLES = ("enc_visit", "lab_result", "vitals", "prob_list", "rx_order", "allergy", "immun", "proc_log", "soc_hx")


def showcase_patient(engine: sa.Engine) -> str | None:
    """The id (``pt_guid``) of the first live patient with rows in every clinical table, or None
    when no patient has them all (a very small demo). Every test is an indexed EXISTS, and the
    scan stops at the first patient that passes, so it is quick at any size."""
    every = " AND ".join(f"EXISTS (SELECT 1 FROM {table} t WHERE t.pt_seq = p.pt_seq AND t.del_flg <> 'Y')" for table in CLINICAL_TABLES)
    # Fixed SQL over known tables: no input reaches it.
    statement = sa.text(
        f"SELECT p.pt_guid FROM pt_master p WHERE p.del_flg <> 'Y' AND p.merged_to_seq IS NULL AND {every} ORDER BY p.pt_seq LIMIT 1"
    )
    with engine.connect() as connection:
        return connection.execute(statement).scalar()
