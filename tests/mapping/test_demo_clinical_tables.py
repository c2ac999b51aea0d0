"""The demo's clinical tables keep the legacy traits the mapping has to cope with."""

from __future__ import annotations


def _one(raw_db, sql: str):
    return raw_db.execute(sql).fetchone()[0]


def test_clinical_tables_have_rows_for_most_patients(raw_db):
    for table, share in [("enc_dx", 0.8), ("allergy", 0.6), ("immun", 0.6), ("soc_hx", 0.5), ("lab_order", 0.5), ("proc_log", 0.3)]:
        patients = _one(raw_db, f"SELECT count(DISTINCT pt_seq) FROM {table}")
        assert patients >= share * 1000, table


def test_junk_dates_soft_deletes_and_local_only_codes(raw_db):
    assert _one(raw_db, "SELECT count(*) FROM immun WHERE admin_dt IN ('', '0000-00-00')") > 0
    assert _one(raw_db, "SELECT count(*) FROM proc_log WHERE perf_dttm = '000000000000'") > 0
    assert _one(raw_db, "SELECT count(*) FROM soc_hx WHERE rec_dttm IN ('', '00000000000000')") > 0
    assert _one(raw_db, "SELECT count(*) FROM lab_order WHERE collect_dttm IN ('', '00000000000000')") > 0
    assert _one(raw_db, "SELECT count(*) FROM enc_dx WHERE ent_dttm = '00000000000000'") > 0
    assert _one(raw_db, "SELECT count(*) FROM soc_hx WHERE tob_use IN ('', '?')") > 0
    for table in ("enc_dx", "allergy", "immun", "soc_hx", "lab_order", "proc_log"):
        assert _one(raw_db, f"SELECT count(*) FROM {table} WHERE del_flg = 'Y'") > 0, table
    # codes the legacy never mapped to a standard, still in use
    assert _one(raw_db, "SELECT count(*) FROM immun i JOIN vac_cd v ON v.vac_cd = i.vac_cd WHERE v.cvx_cd IS NULL") > 0
    assert _one(raw_db, "SELECT count(*) FROM proc_log r JOIN proc_cd c ON c.proc_cd = r.proc_cd WHERE c.cpt_cd IS NULL") > 0
    assert _one(raw_db, "SELECT count(*) FROM lab_order o JOIN lab_panel_cd c ON c.panel_cd = o.panel_cd WHERE c.loinc_cd IS NULL") > 0
    assert _one(raw_db, "SELECT count(*) FROM allergy a JOIN alg_cd c ON c.alg_cd = a.alg_cd WHERE c.snomed_cd IS NULL") > 0
    # hand-keyed rows: results without an order, prescriptions without a drug code, staff without an NPI
    assert _one(raw_db, "SELECT count(*) FROM lab_result WHERE ord_no IS NULL") > 0
    assert _one(raw_db, "SELECT count(*) FROM rx_order WHERE med_cd IS NULL AND drug_txt IS NOT NULL") > 0
    assert _one(raw_db, "SELECT count(*) FROM staff WHERE npi IS NULL OR npi IN ('', '0000000000')") > 0


def test_orders_match_their_results(raw_db):
    """A lab order's collection time and patient are its results' (the report groups them)."""
    assert (
        _one(
            raw_db,
            """SELECT count(*) FROM lab_result r JOIN lab_order o ON o.ord_no = r.ord_no
                           WHERE r.pt_seq <> o.pt_seq OR r.collect_dttm <> o.collect_dttm""",
        )
        == 0
    )
    assert _one(raw_db, "SELECT min(n) FROM (SELECT count(*) n FROM lab_result WHERE ord_no IS NOT NULL GROUP BY ord_no)") >= 3
