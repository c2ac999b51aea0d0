"""Schema of the demo legacy hospital database.

The tables deliberately look like a 1990s-era hospital system rather than FHIR:
terse column names, dates kept as text in several formats, soft-delete flags,
local code tables and a wide vitals table.  The facade's mappings have to cope
with exactly these traits when pointed at real legacy systems.

Only portable types are used (sized strings, integers, sized numerics, text) so
the same metadata works on SQLite, PostgreSQL and MariaDB.  There are no
foreign keys, as is common in legacy systems; the indexes are the ones such a
system would typically have.  Index names carry the table name because
PostgreSQL index names are schema-wide.
"""

from sqlalchemy import Column, Index, Integer, MetaData, Numeric, String, Table, Text

metadata = MetaData()


def _num(precision: int, scale: int) -> Numeric:
    """A fixed-point column read back as float: SQLite has no decimal type,
    and Decimal results there would raise SQLAlchemy warnings."""
    return Numeric(precision, scale, asdecimal=False)


def _flag() -> Column:
    """Soft-delete flag: legacy systems never really delete a row."""
    return Column("del_flg", String(1), nullable=False, default="N")


def _upd() -> Column:
    """Last-update stamp, 'YYYYMMDDHHMMSS' text."""
    return Column("upd_dttm", String(14))


pt_master = Table(
    "pt_master",
    metadata,
    Column("pt_seq", Integer, primary_key=True, autoincrement=False),
    Column("pt_guid", String(36), nullable=False),
    Column("mrn", String(12)),
    Column("last_nm", String(40)),
    Column("first_nm", String(30)),
    Column("mid_init", String(1)),
    Column("sex_cd", String(1)),
    Column("dob", String(8)),
    Column("addr_line1", String(60)),
    Column("city", String(30)),
    Column("st_cd", String(2)),
    Column("zip_cd", String(10)),
    Column("phone_home", String(14)),
    Column("mar_stat", String(1)),
    _flag(),
    Column("merged_to_seq", Integer),
    # Added for federal reporting: the registration screen's race and ethnicity pick lists
    # (W B A I P O; H N; U unknown, D declined) and the sex recorded at birth (M F U).
    Column("race_cd", String(1)),
    Column("ethnic_cd", String(1)),
    Column("sex_birth", String(1)),
    Column("remarks", Text),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_pt_master_last_nm", "last_nm"),
    Index("ix_pt_master_name", "last_nm", "first_nm"),
    Index("ix_pt_master_first_nm", "first_nm"),
    Index("ix_pt_master_dob", "dob"),
    Index("ux_pt_master_mrn", "mrn", unique=True),
    Index("ux_pt_master_guid", "pt_guid", unique=True),
    Index("ix_pt_master_upd", "upd_dttm"),
)

enc_visit = Table(
    "enc_visit",
    metadata,
    Column("visit_no", Integer, primary_key=True, autoincrement=False),
    Column("visit_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("adm_dt", String(19)),
    Column("dsch_dt", String(19)),
    Column("visit_type", String(1)),
    Column("attend_dr", String(10)),
    Column("chief_cmplnt", Text),
    Column("dept_cd", String(6)),
    Column("dsch_disp", String(3)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_enc_visit_pt", "pt_seq"),
    Index("ix_enc_visit_adm", "adm_dt"),
    Index("ux_enc_visit_guid", "visit_guid", unique=True),
)

lab_test_cd = Table(
    "lab_test_cd",
    metadata,
    Column("test_cd", String(10), primary_key=True),
    Column("test_desc", String(60)),
    Column("loinc_cd", String(10)),
    Column("dflt_units", String(20)),
    Column("ref_low", _num(10, 3)),
    Column("ref_high", _num(10, 3)),
    Column("active_yn", String(1)),
)

lab_result = Table(
    "lab_result",
    metadata,
    Column("res_id", Integer, primary_key=True, autoincrement=False),
    Column("res_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("test_cd", String(10)),
    Column("collect_dttm", String(14)),
    Column("result_val", String(20)),
    Column("result_units", String(20)),
    Column("abn_flag", String(1)),
    Column("res_status", String(1)),
    Column("comments", Text),
    Column("ord_no", Integer),
    Column("ref_rng", String(20)),  # the range as the analyser printed it: '4.0-5.6', '<200', '>=40', 'NEG'
    _flag(),
    _upd(),
    Index("ix_lab_result_pt_dt", "pt_seq", "collect_dttm"),
    Index("ix_lab_result_ord", "ord_no"),
    Index("ix_lab_result_test_dt", "test_cd", "collect_dttm"),
    Index("ix_lab_result_dt", "collect_dttm"),
    Index("ux_lab_result_guid", "res_guid", unique=True),
    Index("ix_lab_result_upd", "upd_dttm"),
)

vitals = Table(
    "vitals",
    metadata,
    Column("vs_id", Integer, primary_key=True, autoincrement=False),
    Column("vs_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("taken_dttm", String(14)),
    Column("pulse", Integer),
    Column("bp_sys", Integer),
    Column("bp_dia", Integer),
    Column("resp_rate", Integer),
    Column("temp_f", _num(4, 1)),
    Column("wt_lb", _num(5, 1)),
    Column("ht_in", _num(4, 1)),
    Column("spo2", Integer),
    Column("entered_by", String(8)),
    Column("head_circ_cm", _num(4, 1)),  # infants only (well-child visits)
    # Percentiles the growth-chart screen computed when the nurse saved the row (children only):
    # BMI-for-age (2-20 years), weight-for-length and head circumference (under 3 years).
    Column("bmi_pctl", _num(4, 1)),
    Column("wt_len_pctl", _num(4, 1)),
    Column("hc_pctl", _num(4, 1)),
    _flag(),
    _upd(),
    Index("ix_vitals_pt_dt", "pt_seq", "taken_dttm"),
    Index("ix_vitals_dt", "taken_dttm"),
    Index("ux_vitals_guid", "vs_guid", unique=True),
)

med_cd = Table(
    "med_cd",
    metadata,
    Column("med_cd", String(10), primary_key=True),
    Column("med_desc", String(80)),
    Column("rxnorm_cd", String(10)),
    Column("form_cd", String(10)),
)

rx_order = Table(
    "rx_order",
    metadata,
    Column("rx_id", Integer, primary_key=True, autoincrement=False),
    Column("rx_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("med_cd", String(10)),
    Column("sig_text", Text),
    Column("qty", Integer),
    Column("refills", Integer),
    Column("order_dt", String(8)),
    Column("stop_dt", String(8)),
    Column("rx_stat", String(2)),
    Column("ordering_dr", String(10)),
    Column("drug_txt", String(80)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_rx_order_pt", "pt_seq"),
    Index("ix_rx_order_dt", "order_dt"),
    Index("ux_rx_order_guid", "rx_guid", unique=True),
)

prob_list = Table(
    "prob_list",
    metadata,
    Column("prob_id", Integer, primary_key=True, autoincrement=False),
    Column("prob_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("dx_codes", String(80)),
    Column("prob_desc", String(120)),
    Column("onset_dt", String(8)),
    Column("resolved_dt", String(8)),
    Column("prob_stat", String(1)),
    Column("entered_dt", String(8)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_prob_list_pt", "pt_seq"),
    Index("ux_prob_list_guid", "prob_guid", unique=True),
)

staff = Table(
    "staff",
    metadata,
    Column("dr_cd", String(10), primary_key=True),
    Column("last_nm", String(40)),
    Column("first_nm", String(30)),
    Column("npi", String(10)),
    Column("specialty", String(30)),
    Column("phone_ofc", String(14)),
    Column("org_cd", String(6)),
    Column("active_yn", String(1)),
    Index("ix_staff_last_nm", "last_nm"),
    Index("ix_staff_npi", "npi"),
)

# --- Added later in the legacy system's life: facilities, orders and clinical lists ---------

org_mstr = Table(
    "org_mstr",
    metadata,
    Column("org_cd", String(6), primary_key=True),
    Column("org_nm", String(60)),
    Column("npi", String(10)),
    Column("addr_line1", String(60)),
    Column("city", String(30)),
    Column("st_cd", String(2)),
    Column("zip_cd", String(10)),
    Column("phone", String(14)),
    Column("active_yn", String(1)),
    Index("ix_org_mstr_nm", "org_nm"),
)

dept_loc = Table(
    "dept_loc",
    metadata,
    Column("dept_cd", String(6), primary_key=True),
    Column("dept_nm", String(40)),
    Column("dept_typ", String(3)),  # CLN clinic, ED emergency, INP ward, LAB laboratory
    Column("org_cd", String(6)),
    Column("phone", String(14)),
    Column("active_yn", String(1)),
)

enc_dx = Table(
    "enc_dx",
    metadata,
    Column("dx_id", Integer, primary_key=True, autoincrement=False),
    Column("dx_guid", String(36), nullable=False),
    Column("visit_no", Integer),
    Column("pt_seq", Integer),
    Column("dx_rank", Integer),
    Column("dx_codes", String(80)),
    Column("dx_desc", String(120)),
    Column("ent_dttm", String(14)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_enc_dx_pt", "pt_seq"),
    Index("ix_enc_dx_visit", "visit_no"),
    Index("ux_enc_dx_guid", "dx_guid", unique=True),
)

lab_panel_cd = Table(
    "lab_panel_cd",
    metadata,
    Column("panel_cd", String(10), primary_key=True),
    Column("panel_desc", String(60)),
    Column("loinc_cd", String(10)),
)

lab_order = Table(
    "lab_order",
    metadata,
    Column("ord_no", Integer, primary_key=True, autoincrement=False),
    Column("ord_guid", String(36), nullable=False),
    Column("acc_no", String(12)),  # accession number printed on the specimen label
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("panel_cd", String(10)),
    Column("ord_dr", String(10)),
    Column("collect_dttm", String(14)),
    Column("rpt_dttm", String(14)),
    Column("ord_stat", String(1)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_lab_order_pt_dt", "pt_seq", "collect_dttm"),
    Index("ix_lab_order_dt", "collect_dttm"),
    Index("ux_lab_order_guid", "ord_guid", unique=True),
)

soc_hx = Table(
    "soc_hx",
    metadata,
    Column("sh_id", Integer, primary_key=True, autoincrement=False),
    Column("sh_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("tob_use", String(1)),  # N never, F former, C current daily, S some days, U unknown
    Column("ppd", _num(3, 1)),
    Column("rec_dttm", String(14)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_soc_hx_pt", "pt_seq"),
    Index("ux_soc_hx_guid", "sh_guid", unique=True),
)

alg_cd = Table(
    "alg_cd",
    metadata,
    Column("alg_cd", String(10), primary_key=True),
    Column("alg_desc", String(60)),
    Column("snomed_cd", String(18)),
    Column("alg_cat", String(1)),  # D drug, F food, E environment
)

allergy = Table(
    "allergy",
    metadata,
    Column("alg_id", Integer, primary_key=True, autoincrement=False),
    Column("alg_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("alg_cd", String(10)),
    Column("rxn_txt", String(60)),
    Column("sev_cd", String(2)),
    Column("alg_stat", String(1)),  # A active, I inactive, R resolved
    Column("verif_yn", String(1)),
    Column("entered_dt", String(8)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_allergy_pt", "pt_seq"),
    Index("ux_allergy_guid", "alg_guid", unique=True),
)

vac_cd = Table(
    "vac_cd",
    metadata,
    Column("vac_cd", String(8), primary_key=True),
    Column("vac_desc", String(60)),
    Column("cvx_cd", String(4)),
)

immun = Table(
    "immun",
    metadata,
    Column("imm_id", Integer, primary_key=True, autoincrement=False),
    Column("imm_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("vac_cd", String(8)),
    Column("admin_dt", String(10)),  # YYYY-MM-DD
    Column("lot_no", String(12)),
    Column("imm_stat", String(1)),  # G given, R refused, N not given
    Column("refuse_rsn", String(2)),
    Column("hist_yn", String(1)),  # Y: reported by the patient, not given here
    Column("given_by", String(10)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_immun_pt", "pt_seq"),
    Index("ix_immun_dt", "admin_dt"),
    Index("ux_immun_guid", "imm_guid", unique=True),
)

proc_cd = Table(
    "proc_cd",
    metadata,
    Column("proc_cd", String(8), primary_key=True),
    Column("proc_desc", String(60)),
    Column("cpt_cd", String(5)),
    Column("snomed_cd", String(18)),
)

proc_log = Table(
    "proc_log",
    metadata,
    Column("proc_id", Integer, primary_key=True, autoincrement=False),
    Column("proc_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("proc_cd", String(8)),
    Column("perf_dttm", String(12)),  # YYYYMMDDHHMM
    Column("perf_dr", String(10)),
    Column("proc_stat", String(1)),  # C complete, X not done, I in progress
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_proc_log_pt_dt", "pt_seq", "perf_dttm"),
    Index("ux_proc_log_guid", "proc_guid", unique=True),
)


# --- Records behind the US Core types added later: clinical notes, plans, teams, goals,
# implants, insurance, pharmacy fills, orders and next of kin (filled by records.py). ---

note_typ_cd = Table(
    "note_typ_cd",
    metadata,
    Column("note_typ", String(6), primary_key=True),
    Column("typ_desc", String(60)),
    Column("loinc_cd", String(10)),  # NULL: a home-grown note type nobody mapped
    Column("rpt_cat", String(4)),  # RAD / CARD: also a signed diagnostic report
)

note_hdr = Table(
    "note_hdr",
    metadata,
    Column("note_id", Integer, primary_key=True, autoincrement=False),
    Column("note_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("note_typ", String(6)),
    Column("note_title", String(80)),
    Column("auth_dr", String(10)),
    Column("note_dttm", String(14)),  # YYYYMMDDHHMMSS
    Column("sign_stat", String(1)),  # S signed, U unsigned draft, X retracted (entered in error)
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_note_hdr_pt_dt", "pt_seq", "note_dttm"),
    Index("ix_note_hdr_dt", "note_dttm"),
    Index("ix_note_hdr_typ", "note_typ"),
    Index("ix_note_hdr_auth", "auth_dr"),
    Index("ux_note_hdr_guid", "note_guid", unique=True),
)

note_txt = Table(
    "note_txt",
    metadata,
    Column("note_id", Integer, primary_key=True, autoincrement=False),
    Column("txt_fmt", String(4)),  # 'V2E': HL7 v2 escapes (\.br\ line breaks, \T\ ampersand)
    Column("note_body", Text),
)

care_plan = Table(
    "care_plan",
    metadata,
    Column("cp_id", Integer, primary_key=True, autoincrement=False),
    Column("cp_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("plan_txt", Text),  # free text, lines separated by '~'
    Column("plan_stat", String(1)),  # A active, C completed, X revoked
    Column("start_dt", String(8)),
    Column("end_dt", String(8)),
    Column("auth_dr", String(10)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_care_plan_pt", "pt_seq"),
    Index("ix_care_plan_start", "start_dt"),
    Index("ux_care_plan_guid", "cp_guid", unique=True),
)

care_team = Table(
    "care_team",
    metadata,
    Column("ct_id", Integer, primary_key=True, autoincrement=False),
    Column("ct_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("ct_stat", String(1)),  # A active, I inactive
    Column("pcp_dr", String(10)),
    Column("spec_dr", String(10)),
    Column("cm_nm", String(40)),  # the case manager, by name only
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_care_team_pt", "pt_seq"),
    Index("ux_care_team_guid", "ct_guid", unique=True),
)

goal_cd = Table(
    "goal_cd",
    metadata,
    Column("goal_cd", String(8), primary_key=True),
    Column("goal_desc", String(60)),
    Column("snomed_cd", String(18)),
)

pt_goal = Table(
    "pt_goal",
    metadata,
    Column("goal_id", Integer, primary_key=True, autoincrement=False),
    Column("goal_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("goal_cd", String(8)),  # NULL: typed in as free text
    Column("goal_txt", String(120)),
    Column("goal_stat", String(1)),  # A active, M met, H on hold, X cancelled
    Column("start_dt", String(8)),
    Column("target_dt", String(8)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_pt_goal_pt", "pt_seq"),
    Index("ix_pt_goal_target", "target_dt"),
    Index("ux_pt_goal_guid", "goal_guid", unique=True),
)

dev_typ_cd = Table(
    "dev_typ_cd",
    metadata,
    Column("dev_typ", String(8), primary_key=True),
    Column("dev_desc", String(60)),
    Column("snomed_cd", String(18)),
)

implant = Table(
    "implant",
    metadata,
    Column("imp_id", Integer, primary_key=True, autoincrement=False),
    Column("imp_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("dev_typ", String(8)),
    Column("udi_txt", String(120)),  # the UDI as scanned, GS1 human-readable form
    Column("implant_dt", String(8)),
    Column("imp_stat", String(1)),  # A in place, R removed
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_implant_pt", "pt_seq"),
    Index("ix_implant_typ", "dev_typ"),
    Index("ux_implant_guid", "imp_guid", unique=True),
)

payer_mstr = Table(
    "payer_mstr",
    metadata,
    Column("payer_cd", String(8), primary_key=True),
    Column("payer_nm", String(60)),
    Column("sop_cd", String(4)),  # source-of-payment typology code
    Column("phone", String(14)),
)

ins_cov = Table(
    "ins_cov",
    metadata,
    Column("cov_id", Integer, primary_key=True, autoincrement=False),
    Column("cov_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("cov_seq", Integer),  # 1 primary, 2 secondary
    Column("payer_cd", String(8)),
    Column("member_no", String(20)),
    Column("group_no", String(20)),
    Column("group_nm", String(60)),
    Column("plan_nm", String(60)),
    Column("subscr_rel", String(3)),  # SEL self, SPO spouse, CHD child, OTH
    Column("eff_dt", String(8)),
    Column("term_dt", String(8)),
    Column("cov_stat", String(1)),  # A active, T terminated
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_ins_cov_pt", "pt_seq"),
    Index("ux_ins_cov_guid", "cov_guid", unique=True),
)

rx_fill = Table(
    "rx_fill",
    metadata,
    Column("fill_id", Integer, primary_key=True, autoincrement=False),
    Column("fill_guid", String(36), nullable=False),
    Column("rx_id", Integer),
    Column("pt_seq", Integer),
    Column("fill_no", Integer),  # 0 first fill, 1.. refills
    Column("fill_dttm", String(12)),  # YYYYMMDDHHMM handed over
    Column("qty", _num(7, 2)),
    Column("days_sup", Integer),
    Column("fill_stat", String(1)),  # D dispensed, Q queued, C cancelled
    Column("ph_user", String(8)),
    _flag(),
    _upd(),
    Index("ix_rx_fill_pt", "pt_seq"),
    Index("ix_rx_fill_rx", "rx_id"),
    Index("ix_rx_fill_dt", "fill_dttm"),
    Index("ux_rx_fill_guid", "fill_guid", unique=True),
)

ord_cd = Table(
    "ord_cd",
    metadata,
    Column("ord_cd", String(8), primary_key=True),
    Column("ord_desc", String(60)),
    Column("ord_cat", String(4)),  # IMG imaging, REF referral, SURG, EDU, COUN
    Column("cpt_cd", String(5)),
    Column("snomed_cd", String(18)),
)

ord_req = Table(
    "ord_req",
    metadata,
    Column("req_id", Integer, primary_key=True, autoincrement=False),
    Column("req_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("ord_cd", String(8)),
    Column("ord_dttm", String(14)),
    Column("ord_dr", String(10)),
    Column("req_stat", String(1)),  # A active, C completed, X cancelled
    Column("req_note", String(120)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_ord_req_pt_dt", "pt_seq", "ord_dttm"),
    Index("ix_ord_req_dt", "ord_dttm"),
    Index("ix_ord_req_cd", "ord_cd"),
    Index("ux_ord_req_guid", "req_guid", unique=True),
)

panel_spec = Table(
    "panel_spec",
    metadata,
    Column("panel_cd", String(8), primary_key=True),
    Column("spec_typ", String(4)),
    Column("spec_desc", String(40)),
    Column("snomed_cd", String(18)),
)

pt_nok = Table(
    "pt_nok",
    metadata,
    Column("nok_id", Integer, primary_key=True, autoincrement=False),
    Column("nok_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("nok_nm", String(60)),  # LAST,FIRST
    Column("rel_cd", String(4)),  # SPO, PAR, CHD, SIB, FRND, GRD
    Column("phone", String(14)),
    Column("guar_yn", String(1)),  # Y: also the guarantor of the account
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_pt_nok_pt", "pt_seq"),
    Index("ix_pt_nok_nm", "nok_nm"),
    Index("ux_pt_nok_guid", "nok_guid", unique=True),
)

# The registration screen's employer page: one row per job the patient reported, as typed.
emp_hx = Table(
    "emp_hx",
    metadata,
    Column("emp_id", Integer, primary_key=True, autoincrement=False),
    Column("emp_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("occ_desc", String(60)),  # occupation, free text ('RN', 'RETIRED', 'SELF EMPLOYED - ROOFING')
    Column("ind_desc", String(60)),  # industry, free text
    Column("employer_nm", String(60)),
    Column("start_dt", String(8)),  # YYYYMMDD
    Column("end_dt", String(8)),  # blank: the current job
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_emp_hx_pt_dt", "pt_seq", "start_dt"),
    Index("ux_emp_hx_guid", "emp_guid", unique=True),
)

# The nursing intake's OB questions at a clinic visit: pregnant now? (Y N U) and, when asked,
# the one-key question "would you like to become pregnant in the next year?" (Y N U).
ob_hx = Table(
    "ob_hx",
    metadata,
    Column("ob_id", Integer, primary_key=True, autoincrement=False),
    Column("ob_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("preg_yn", String(1)),
    Column("preg_intent", String(1)),
    Column("rec_dttm", String(14)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_ob_hx_pt_dt", "pt_seq", "rec_dttm"),
    Index("ux_ob_hx_guid", "ob_guid", unique=True),
)

# The Hunger Vital Sign, a two-question form: O often true, S sometimes true, N never true,
# R don't know/refused; NULL when the question was skipped.
hvs_form = Table(
    "hvs_form",
    metadata,
    Column("hvs_id", Integer, primary_key=True, autoincrement=False),
    Column("hvs_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("visit_no", Integer),
    Column("q1_ans", String(1)),  # worried food would run out
    Column("q2_ans", String(1)),  # food didn't last
    Column("form_dttm", String(14)),
    _flag(),
    _upd(),
    Column("upd_user", String(8)),
    Index("ix_hvs_form_pt_dt", "pt_seq", "form_dttm"),
    Index("ux_hvs_form_guid", "hvs_guid", unique=True),
)
