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
    "pt_master", metadata,
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
    "enc_visit", metadata,
    Column("visit_no", Integer, primary_key=True, autoincrement=False),
    Column("visit_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("adm_dt", String(19)),
    Column("dsch_dt", String(19)),
    Column("visit_type", String(1)),
    Column("attend_dr", String(10)),
    Column("chief_cmplnt", Text),
    _flag(),
    _upd(),
    Index("ix_enc_visit_pt", "pt_seq"),
    Index("ix_enc_visit_adm", "adm_dt"),
    Index("ux_enc_visit_guid", "visit_guid", unique=True),
)

lab_test_cd = Table(
    "lab_test_cd", metadata,
    Column("test_cd", String(10), primary_key=True),
    Column("test_desc", String(60)),
    Column("loinc_cd", String(10)),
    Column("dflt_units", String(20)),
    Column("ref_low", _num(10, 3)),
    Column("ref_high", _num(10, 3)),
    Column("active_yn", String(1)),
)

lab_result = Table(
    "lab_result", metadata,
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
    _flag(),
    _upd(),
    Index("ix_lab_result_pt_dt", "pt_seq", "collect_dttm"),
    Index("ix_lab_result_test_dt", "test_cd", "collect_dttm"),
    Index("ix_lab_result_dt", "collect_dttm"),
    Index("ux_lab_result_guid", "res_guid", unique=True),
    Index("ix_lab_result_upd", "upd_dttm"),
)

vitals = Table(
    "vitals", metadata,
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
    _flag(),
    _upd(),
    Index("ix_vitals_pt_dt", "pt_seq", "taken_dttm"),
    Index("ix_vitals_dt", "taken_dttm"),
    Index("ux_vitals_guid", "vs_guid", unique=True),
)

med_cd = Table(
    "med_cd", metadata,
    Column("med_cd", String(10), primary_key=True),
    Column("med_desc", String(80)),
    Column("rxnorm_cd", String(10)),
    Column("form_cd", String(10)),
)

rx_order = Table(
    "rx_order", metadata,
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
    _flag(),
    _upd(),
    Index("ix_rx_order_pt", "pt_seq"),
    Index("ix_rx_order_dt", "order_dt"),
    Index("ux_rx_order_guid", "rx_guid", unique=True),
)

prob_list = Table(
    "prob_list", metadata,
    Column("prob_id", Integer, primary_key=True, autoincrement=False),
    Column("prob_guid", String(36), nullable=False),
    Column("pt_seq", Integer),
    Column("dx_codes", String(80)),
    Column("prob_desc", String(120)),
    Column("onset_dt", String(8)),
    Column("resolved_dt", String(8)),
    Column("prob_stat", String(1)),
    _flag(),
    _upd(),
    Index("ix_prob_list_pt", "pt_seq"),
    Index("ux_prob_list_guid", "prob_guid", unique=True),
)

staff = Table(
    "staff", metadata,
    Column("dr_cd", String(10), primary_key=True),
    Column("last_nm", String(40)),
    Column("first_nm", String(30)),
    Column("npi", String(10)),
    Column("specialty", String(30)),
)
