"""Deterministic synthetic data for the demo legacy hospital database.

Every value comes from one ``random.Random(seed)`` drawn in a fixed order and is
dated relative to a fixed "today", never the wall clock, so a (seed, patients)
pair always yields identical table contents: tests, benchmarks and screenshots
stay reproducible.  Rows are streamed to the database in chunks, so 100k
patients need no more memory than 1k.  All people, addresses and identifiers
are made up.
"""

from __future__ import annotations

import itertools
import os
import random
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateTable

from .schema import (
    enc_visit, lab_result, lab_test_cd, med_cd, metadata, prob_list, pt_master, rx_order,
    staff, vitals,
)

DEMO_SEED = 20240101
TODAY = datetime(2026, 6, 30, 17, 0, 0)  # fixed reference "now": output never depends on the clock
CHUNK_ROWS = 10_000  # rows per executemany: bounded memory at any size
CHRONIC_SEQ = 1  # pt_seq of the long-history patient used for $everything/paging benchmarks

# --- Reference data -----------------------------------------------------------------------

FIRST_F = ("MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH", "JENNIFER", "MARIA", "SUSAN",
           "MARGARET", "DOROTHY", "LISA", "NANCY", "KAREN", "BETTY", "HELEN", "SANDRA", "DONNA",
           "CAROL", "ANA", "ROSA", "EMMA", "OLIVIA", "SOPHIA", "MIA", "CHLOE", "GRACE", "LILY",
           "ZOE", "NGOC ANH", "ANNE-MARIE")
FIRST_M = ("JAMES", "JOHN", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "JOSEPH",
           "THOMAS", "CHARLES", "DANIEL", "MATTHEW", "ANTHONY", "MARK", "JOSE", "LUIS", "CARLOS",
           "PAUL", "STEVEN", "KEVIN", "LIAM", "NOAH", "ETHAN", "LUCAS", "MASON", "OWEN", "MINH",
           "JEAN-PAUL", "DE SHAWN", "AHMED")
LAST = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS",
        "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON",
        "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON", "WHITE",
        "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER", "YOUNG", "ALLEN",
        "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS",
        "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS",
        "O'CONNOR", "MC DONALD", "DE LA CRUZ", "SMITH-JONES", "VAN DYKE", "ST. JOHN")
STREETS = ("MAPLE", "OAK", "PINE", "CEDAR", "ELM", "WASHINGTON", "LAKE", "HILL", "PARK", "MAIN",
           "CHURCH", "MILL", "RIVER", "SPRING", "CENTER", "HIGHLAND", "SUNSET", "LINCOLN",
           "WALNUT", "CHESTNUT")
STREET_SUFFIX = ("ST", "AVE", "RD", "DR", "LN", "CT", "BLVD", "WAY")
CITIES = (("SPRINGFIELD", "IL", "627"), ("RIVERSIDE", "CA", "925"), ("FAIRVIEW", "TN", "370"),
          ("GREENVILLE", "SC", "296"), ("CLINTON", "IA", "527"), ("MADISON", "WI", "537"),
          ("GEORGETOWN", "KY", "403"), ("SALEM", "OR", "973"), ("ARLINGTON", "TX", "760"),
          ("ASHLAND", "OH", "448"), ("BRISTOL", "CT", "060"), ("DOVER", "DE", "199"),
          ("MILFORD", "MA", "017"), ("OXFORD", "MS", "386"))
REMARKS = ("PT PREFERS AM APPTS", "INTERPRETER NEEDED - SPANISH",
           "INTERPRETER NEEDED - VIETNAMESE", "HARD OF HEARING", "CALL CELL, NOT HOME #",
           "NO SHOW X2 - CALL TO CONFIRM", "WHEELCHAIR ACCESS NEEDED", "SELF PAY",
           "pt requests female provider")
REG_USERS = ("REGCLK01", "REGCLK02", "HIMCORR", "CONV1998", "ADTIFACE")
SPECIALTIES = (("FAMILY MEDICINE", "clinic"), ("INTERNAL MEDICINE", "clinic"),
               ("PEDIATRICS", "clinic"), ("EMERGENCY MEDICINE", "ed"), ("HOSPITALIST", "hosp"),
               ("CARDIOLOGY", "hosp"), ("ENDOCRINOLOGY", "clinic"), ("NEPHROLOGY", "hosp"))
COMPLAINTS = {
    "O": ("ROUTINE F/U", "ANNUAL PHYSICAL", "HTN F/U", "DM CHECK", "MED REFILL", "LAB REVIEW",
          "cough x 1 wk", "KNEE PAIN", "rash on arms", "PRE-OP CLEARANCE", "FLU SHOT"),
    "E": ("CHEST PAIN", "SOB", "ABD PAIN", "FALL AT HOME", "FEVER", "laceration L hand",
          "MVC - NECK PAIN", "DIZZINESS", "N/V/D"),
    "I": ("CHF EXACERBATION", "PNEUMONIA", "CHEST PAIN R/O MI", "CELLULITIS LLE", "COPD EXAC",
          "DKA", "SEPSIS?", "ELECTIVE TKA RIGHT"),
}


class LabTest(NamedTuple):
    """A local lab code plus the value distribution (min, max, mode) the generator draws from."""
    code: str
    desc: str
    loinc: str | None
    units: str | None
    ref_low: float | None
    ref_high: float | None
    dist: tuple[float, float, float] | None = None
    decimals: int = 0
    censored: str | None = None  # e.g. '>500': the analyser's reporting limit


LAB_TESTS = (
    LabTest("GLU", "GLUCOSE, SERUM", "2345-7", "mg/dl", 70, 99, (70, 140, 92), 0, ">500"),
    LabTest("HGBA1C", "HEMOGLOBIN A1C", "4548-4", "%", 4.0, 5.6, (4.5, 6.4, 5.3), 1),
    LabTest("NA", "SODIUM", "2951-2", "mmol/L", 136, 145, (130, 150, 140), 0),
    LabTest("K", "POTASSIUM", "2823-3", "MMOL/L", 3.5, 5.1, (3.0, 6.0, 4.2), 1),
    LabTest("CREAT", "CREATININE", "2160-0", "MG/DL", 0.6, 1.3, (0.5, 2.0, 0.9), 2),
    LabTest("BUN", "UREA NITROGEN (BUN)", "3094-0", "mg/dL", 7, 20, (5, 40, 14), 0),
    LabTest("CHOL", "CHOLESTEROL, TOTAL", "2093-3", "MG/DL", None, 200, (120, 280, 185), 0),
    LabTest("HDL", "HDL CHOLESTEROL", "2085-9", "mg/dl", 40, None, (25, 90, 52), 0),
    LabTest("LDL", "LDL CHOLESTEROL, CALC", "13457-7", "mg/dl", None, 100, (40, 190, 105), 0),
    LabTest("TRIG", "TRIGLYCERIDES", "2571-8", "MG/DL", None, 150, (40, 450, 120), 0),
    LabTest("WBC", "WBC COUNT", "6690-2", "K/uL", 4.5, 11.0, (3.0, 15.0, 7.0), 1),
    LabTest("HGB", "HEMOGLOBIN", "718-7", "g/dL", 12.0, 17.5, (8.5, 18.0, 14.0), 1),
    LabTest("PLT", "PLATELET COUNT", "777-3", "K/uL", 150, 400, (90, 500, 250), 0),
    LabTest("TSH", "TSH", "3016-3", "mIU/L", 0.45, 4.5, (0.2, 7.0, 1.8), 2, "<0.01"),
    LabTest("ALT", "ALT (SGPT)", "1742-6", "U/L", 7, 56, (8, 110, 24), 0, "<5"),
    LabTest("AST", "AST (SGOT)", "1920-8", "U/L", 10, 40, (10, 95, 23), 0, "<5"),
    LabTest("UDS", "URINE DRUG SCREEN", None, None, None, None),  # qualitative POS/NEG
    LabTest("XMISC", "MISC SEND-OUT TEST", None, None, None, None),  # report lives elsewhere
)
LABS = {t.code: t for t in LAB_TESTS}
NUMERIC_LABS = tuple(t.code for t in LAB_TESTS if t.dist)
PANELS = (("GLU", "NA", "K", "CREAT", "BUN"), ("CHOL", "HDL", "LDL", "TRIG"),
          ("WBC", "HGB", "PLT"), ("GLU", "HGBA1C", "CREAT"), ("ALT", "AST", "TSH"))
LAB_COMMENTS = ("SPECIMEN SLIGHTLY HEMOLYZED", "FASTING", "NON-FASTING",
                "RESULT VERIFIED BY REPEAT ANALYSIS", "CALLED TO DR OFFICE", "LIPEMIC SPECIMEN")
CANCEL_REASONS = ("CANCELLED - SPECIMEN HEMOLYZED", "CANCELLED - QNS",
                  "CANCELLED - DUPLICATE ORDER", "CANCELLED - SPECIMEN CLOTTED")
SENDOUT_COMMENTS = ("SENT TO REFERENCE LAB - SEE SCANNED REPORT", "VIT D 25-OH: 28 NG/ML",
                    "RESULT IN MEDIA TAB", "ANA SCREEN NEGATIVE")

# local code, description, RxNorm (None where the pharmacy never mapped it), form, sig, qty
MEDS = (
    ("100234", "METFORMIN HCL ER 500MG TAB 24HR", "860975", "TAB", "1 TAB PO QPM WITH MEAL", 90),
    ("100871", "LISINOPRIL 10MG TAB", "314076", "TAB", "1 TAB PO QD", 90),
    ("101122", "AMLODIPINE BESYLATE 5MG TAB", "197361", "TAB", "1 TAB PO QD", 30),
    ("101390", "HYDROCHLOROTHIAZIDE 25MG TAB", "310798", "TAB", "1 TAB PO QAM", 90),
    ("102045", "ATORVASTATIN 80MG TAB", "259255", "TAB", "1 TAB PO QHS", 90),
    ("102046", "SIMVASTATIN 10MG TAB", "314231", "TAB", "1 TAB PO QHS", 30),
    ("102310", "CLOPIDOGREL 75MG TAB", "309362", "TAB", "1 TAB PO QD", 30),
    ("103007", "ALBUTEROL HFA 90MCG/ACT INH 200 ACT", "745679", "INH",
     "2 PUFFS INH Q4-6H PRN SOB/WHEEZE", 1),
    ("104410", "ACETAMINOPHEN 325MG TAB", "313782", "TAB", "2 TABS PO Q6H PRN PAIN", 60),
    ("104522", "NAPROXEN SODIUM 220MG TAB", "849574", "TAB", "1 TAB PO BID PRN PAIN W/ FOOD", 30),
    ("105118", "LEVOTHYROXINE 50MCG TAB", None, "TAB", "1 TAB PO QAM ON EMPTY STOMACH", 90),
    ("105600", "OMEPRAZOLE 20MG CAP DR", None, "CAP", "1 CAP PO QD BEFORE BREAKFAST", 30),
    ("190001", "MAGIC MOUTHWASH (COMPOUNDED) 240ML", None, "SUSP", "SWISH & SPIT 10ML Q4H PRN", 1),
)
SIGS = {m[0]: (m[4], m[5]) for m in MEDS}


class Problem(NamedTuple):
    icd10: str
    snomed: str
    local: str | None  # some clinics coded problems with home-grown codes only
    desc: str
    chronic: bool
    meds: tuple[str, ...] = ()
    labs: dict | None = None  # lab distributions this problem shifts


PROBLEMS = {
    "DM2": Problem("E11.9", "44054006", "DMCTRL", "DIABETES MELLITUS TYPE 2 W/O COMPLICATIONS",
                   True, ("100234",), {"GLU": (100, 250, 150), "HGBA1C": (6.2, 11.0, 7.4)}),
    "HTN": Problem("I10", "38341003", "HTN2", "ESSENTIAL HYPERTENSION", True,
                   ("100871", "101122", "101390")),
    "HLD": Problem("E78.5", "55822004", "LIPID1", "HYPERLIPIDEMIA, UNSPECIFIED", True,
                   ("102045", "102046"), {"LDL": (100, 220, 150), "CHOL": (180, 300, 235)}),
    "ASTH": Problem("J45.909", "195967001", None, "ASTHMA, UNCOMPLICATED", True, ("103007",)),
    "COPD": Problem("J44.9", "13645005", "COPD", "COPD", True, ("103007",)),
    "DEP": Problem("F32.9", "35489007", "DEPR", "MAJOR DEPRESSIVE DISORDER", True),
    "HYPO": Problem("E03.9", "40930008", None, "HYPOTHYROIDISM", True, ("105118",),
                    {"TSH": (1.5, 12.0, 5.0)}),
    "GERD": Problem("K21.9", "235595009", "GERD", "GERD W/O ESOPHAGITIS", True, ("105600",)),
    "CAD": Problem("I25.10", "53741008", "CAD", "CORONARY ARTERY DISEASE", True, ("102310",)),
    "CKD": Problem("N18.30", "433144002", "CKD3", "CHRONIC KIDNEY DISEASE, STAGE 3", True, (),
                   {"CREAT": (1.3, 3.2, 1.8), "BUN": (18, 60, 30)}),
    "OA": Problem("M19.90", "396275006", None, "OSTEOARTHRITIS", True, ("104410", "104522")),
    "OBES": Problem("E66.9", "414916001", "OBES", "OBESITY", True),
    "URI": Problem("J06.9", "54150009", "URI", "UPPER RESPIRATORY INFECTION", False, ("104410",)),
    "UTI": Problem("N39.0", "68566005", "UTI", "URINARY TRACT INFECTION", False),
    "SPRAIN": Problem("S93.401A", "44465007", None, "SPRAIN R ANKLE", False, ("104522",)),
    "PHAR": Problem("J02.9", "405737000", None, "PHARYNGITIS", False, ("190001",)),
}
CHRONIC_PROBLEMS = tuple(k for k, p in PROBLEMS.items() if p.chronic)
ACUTE_PROBLEMS = tuple(k for k, p in PROBLEMS.items() if not p.chronic)


# --- Formatting helpers -------------------------------------------------------------------

def _ts14(dt: datetime) -> str:
    return dt.strftime("%Y%m%d%H%M%S")


def _ts19(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _d8(dt: date) -> str:
    return dt.strftime("%Y%m%d")


def _npi(base9: str) -> str:
    """Append the Luhn check digit NPIs carry (computed over the '80840' prefix)."""
    total = 0
    for i, ch in enumerate(reversed("80840" + base9)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return base9 + str(-total % 10)


# --- Generation ---------------------------------------------------------------------------

class _Writer:
    """Buffers rows per table and inserts them in chunks, keeping memory bounded."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.buffers: dict[Table, list[dict]] = {t: [] for t in metadata.sorted_tables}
        self.counts = {t.name: 0 for t in metadata.sorted_tables}

    def add(self, table: Table, **row) -> None:
        buf = self.buffers[table]
        buf.append(row)
        if len(buf) >= CHUNK_ROWS:
            self.flush(table)

    def flush(self, table: Table) -> None:
        if rows := self.buffers[table]:
            self.conn.execute(table.insert(), rows)
            self.counts[table.name] += len(rows)
            self.buffers[table] = []

    def close(self) -> dict[str, int]:
        for table in self.buffers:
            self.flush(table)
        return dict(self.counts)


@dataclass
class _Patient:
    """What later records of one patient need to stay consistent with each other."""
    seq: int
    mrn: str
    born: datetime
    since: datetime  # start of this patient's history at the hospital
    demo: dict  # demographic columns, copied verbatim into a duplicate registration
    pcp: str
    deleted: bool
    merged: bool
    bp: int  # usual systolic pressure
    ht: float  # adult height, inches
    wt: float  # adult weight, pounds
    labs: dict = field(default_factory=dict)  # test code -> shifted distribution


class _Hospital:
    """Draws every row from one RNG in a fixed order and hands it to the writer."""

    def __init__(self, rng: random.Random, out: _Writer):
        self.rng, self.out = rng, out
        self.ids = {name: itertools.count(1) for name in ("visit", "res", "vs", "rx", "prob")}
        self.doctors: dict[str, list[str]] = {"clinic": [], "ed": [], "hosp": []}

    # small helpers
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def between(self, start: datetime, end: datetime) -> datetime:
        return start + (end - start) * self.rng.random() if end > start else start

    def maybe_bad(self, p: float, good: str, *bad: str) -> str:
        """Legacy systems accepted junk dates; reproduce a small share of them."""
        return self.rng.choice(bad) if self.chance(p) else good

    def stamp(self, when: datetime) -> str:
        """upd_dttm: a little after the event, never in the future."""
        return _ts14(min(when + timedelta(minutes=self.rng.randint(5, 4000)), TODAY))

    def deleted(self, p: float = 0.005) -> str:
        return "Y" if self.chance(p) else "N"

    # code tables
    def add_reference_tables(self) -> None:
        for t in LAB_TESTS:
            self.out.add(lab_test_cd, test_cd=t.code, test_desc=t.desc, loinc_cd=t.loinc,
                         dflt_units=t.units, ref_low=t.ref_low, ref_high=t.ref_high,
                         active_yn="Y")
        for code, desc, rxnorm, form, _sig, _qty in MEDS:
            self.out.add(med_cd, med_cd=code, med_desc=desc, rxnorm_cd=rxnorm, form_cd=form)
        for i in range(40):
            specialty, pool = SPECIALTIES[i % len(SPECIALTIES)]
            code = f"DR{1003 + 7 * i}"
            self.doctors[pool].append(code)
            self.out.add(staff, dr_cd=code, last_nm=self.rng.choice(LAST),
                         first_nm=self.rng.choice(FIRST_F + FIRST_M),
                         npi=_npi(f"1{self.rng.randrange(10**8):08d}"), specialty=specialty)

    # patients
    def add_patient(self, seq: int, prev: _Patient | None) -> _Patient:
        rng = self.rng
        chronic = seq == CHRONIC_SEQ
        dup_of = prev if (prev and prev.seq != CHRONIC_SEQ and not (prev.merged or prev.deleted)
                          and self.chance(0.005)) else None
        if dup_of:  # same person registered twice, later merged by HIM
            demo, born = dict(dup_of.demo), dup_of.born
        else:
            born, demo = self.demographics(chronic)
        years = 20 if chronic else 1 if dup_of else rng.randint(1, 8)
        since = max(TODAY - timedelta(days=365 * years), born + timedelta(days=1))
        adult_ht = rng.uniform(64, 75) if demo["sex_cd"] == "M" else rng.uniform(59, 70)
        pt = _Patient(
            seq=seq, mrn=f"MRN{seq + 1000:07d}", born=born, since=since, demo=demo,
            pcp=rng.choice(self.doctors["clinic"]),
            deleted=not (chronic or dup_of) and self.chance(0.01),  # merged rows stay 'N'
            merged=dup_of is not None, bp=rng.randint(105, 135), ht=adult_ht,
            wt=rng.uniform(19, 38) * adult_ht ** 2 / 703)
        remarks = (f"DUP REG - MERGED INTO {dup_of.mrn}" if dup_of
                   else rng.choice(REMARKS) if self.chance(0.12) else None)
        self.out.add(pt_master, pt_seq=seq, pt_guid=self.uid(), mrn=pt.mrn, **demo,
                     del_flg="Y" if pt.deleted else "N",
                     merged_to_seq=dup_of.seq if dup_of else None, remarks=remarks,
                     upd_dttm=_ts14(self.between(since, TODAY)), upd_user=rng.choice(REG_USERS))
        problems = self.add_problems(pt, chronic)
        if "HTN" in problems:
            pt.bp += 18
        for key in problems:
            pt.labs.update(PROBLEMS[key].labs or {})
        self.add_encounters(pt, per_year=50 if chronic else rng.uniform(1.0, 2.5),
                            boost=0.5 if chronic else 0.0)
        return pt

    def demographics(self, chronic: bool) -> tuple[datetime, dict]:
        rng = self.rng
        sex = rng.choices(("F", "M", "U", None), weights=(510, 470, 15, 5))[0]
        first = rng.choice(FIRST_M if sex == "M" else FIRST_F if sex == "F" else FIRST_F + FIRST_M)
        lo, hi = (date(1948, 1, 1), date(1958, 12, 31)) if chronic else (date(1930, 1, 1),
                                                                        date(2024, 12, 31))
        born = datetime.combine(lo + timedelta(days=rng.randrange((hi - lo).days)), time())
        adult = (TODAY - born).days > 18 * 365
        city, state, zip3 = rng.choice(CITIES)
        addr = f"{rng.randint(10, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_SUFFIX)}"
        zip_cd = f"{zip3}{rng.randrange(100):02d}"
        return born, dict(
            last_nm=rng.choice(LAST), first_nm=first,
            mid_init=rng.choice("ABCDEFGHJKLMNPRSTW") if self.chance(0.6) else None,
            sex_cd=sex,
            dob=_d8(born) if chronic else self.maybe_bad(0.01, _d8(born), "", "00000000"),
            addr_line1=addr + (f" APT {rng.randint(1, 40)}" if self.chance(0.1) else ""),
            city=city, st_cd=state,
            zip_cd=zip_cd + (f"-{rng.randrange(10000):04d}" if self.chance(0.2) else ""),
            phone_home=(f"(555) {rng.randint(200, 999)}-{rng.randrange(10000):04d}"
                        if self.chance(0.93) else None),
            mar_stat=rng.choice(("S", "M", "M", "D", "W", None) if adult else ("S", None)))

    # problem list and medications
    def add_problems(self, pt: _Patient, chronic: bool) -> list[str]:
        rng = self.rng
        if chronic:
            keys = ["DM2", "HTN", "HLD", "CKD"]
        else:
            pool = CHRONIC_PROBLEMS if (TODAY - pt.born).days > 18 * 365 else ("ASTH",)
            keys = rng.sample(pool, min(len(pool), rng.choices(range(5), (30, 30, 22, 12, 6))[0]))
        if self.chance(0.3):
            keys.append(rng.choice(ACUTE_PROBLEMS))
        for key in keys:
            prob = PROBLEMS[key]
            onset = self.between(max(pt.born, pt.since - timedelta(days=3650)) if prob.chronic
                                 else pt.since, TODAY - timedelta(days=14))
            stat = (rng.choices("ARI", (90, 0, 10))[0] if prob.chronic
                    else rng.choices("ARI", (10, 85, 5))[0])
            resolved = onset + timedelta(days=rng.randint(7, 60)) if stat == "R" else None
            style = rng.random()
            if style < 0.55:
                codes = f"ICD10:{prob.icd10};SNOMED-CT:{prob.snomed}"
            elif style < 0.9 or not prob.local:
                codes = f"ICD10:{prob.icd10}"
            else:
                codes = f"LOCAL:{prob.local}"
            self.out.add(prob_list, prob_id=next(self.ids["prob"]), prob_guid=self.uid(),
                         pt_seq=pt.seq, dx_codes=codes, prob_desc=prob.desc,
                         onset_dt=self.maybe_bad(0.1, _d8(onset), ""),
                         resolved_dt=_d8(resolved) if resolved else None, prob_stat=stat,
                         del_flg=self.deleted(0.01), upd_dttm=self.stamp(resolved or onset))
            if prob.meds and self.chance(0.8):
                self.add_prescriptions(pt, rng.choice(prob.meds), onset, renew=prob.chronic)
        return keys

    def add_prescriptions(self, pt: _Patient, med: str, start: datetime, renew: bool) -> None:
        """Chronic drugs are re-ordered about yearly; acute ones are a single short course."""
        rng = self.rng
        ordered = max(start, pt.since)
        while True:
            if not renew:
                stop, stat = ordered + timedelta(days=10), "C"
            elif self.chance(0.06):
                stop, stat = ordered + timedelta(days=rng.randint(10, 300)), "D"
            else:
                stop, stat = ordered + timedelta(days=rng.randint(330, 400)), "C"
            if stop > TODAY:
                stop, stat = None, "A"
            sig, qty = SIGS[med]
            self.out.add(rx_order, rx_id=next(self.ids["rx"]), rx_guid=self.uid(), pt_seq=pt.seq,
                         visit_no=None, med_cd=med, sig_text=sig, qty=qty,
                         refills=rng.randint(0, 5) if renew else 0, order_dt=_d8(ordered),
                         stop_dt=_d8(stop) if stop else rng.choice((None, "")), rx_stat=stat,
                         ordering_dr=pt.pcp if self.chance(0.8)
                         else rng.choice(self.doctors["clinic"]),
                         del_flg=self.deleted(), upd_dttm=self.stamp(stop or ordered))
            if stat != "C" or not renew:
                return
            ordered = stop

    # encounters with their vitals and labs
    def add_encounters(self, pt: _Patient, per_year: float, boost: float) -> None:
        """Visits spread over the patient's history; ``boost`` raises the odds of
        vitals and labs (the chronic patient is measured at nearly every visit)."""
        rng = self.rng
        span = TODAY - pt.since
        count = max(1, round(span.days / 365 * per_year))
        for adm in sorted(pt.since + span * rng.random() for _ in range(count)):
            kind = rng.choices("OEI", (75, 15, 10))[0]
            if kind == "O":
                adm = adm.replace(hour=rng.randint(8, 16), minute=rng.randrange(0, 60, 15),
                                  second=0, microsecond=0)
                stay = timedelta(minutes=rng.randint(15, 90))
            else:
                hours = rng.uniform(1.5, 10) if kind == "E" else rng.uniform(24, 216)
                stay = timedelta(hours=hours)
            dsch = adm + stay
            visit_no = next(self.ids["visit"])
            pool = {"O": "clinic", "E": "ed", "I": "hosp"}[kind]
            doctor = pt.pcp if kind == "O" and self.chance(0.7) else rng.choice(self.doctors[pool])
            self.out.add(
                enc_visit, visit_no=visit_no, visit_guid=self.uid(), pt_seq=pt.seq,
                adm_dt=self.maybe_bad(0.003, _ts19(adm), "0000-00-00 00:00:00"),
                dsch_dt=(rng.choice((None, "")) if dsch > TODAY or self.chance(0.01)
                         else _ts19(dsch)),
                visit_type=kind, attend_dr=doctor,
                chief_cmplnt=rng.choice(COMPLAINTS[kind]) if self.chance(0.95) else None,
                del_flg=self.deleted(), upd_dttm=self.stamp(min(dsch, TODAY)))
            if self.chance(0.75 + boost):
                self.add_vitals(pt, visit_no, adm)
            if self.chance({"O": 0.15, "E": 0.5, "I": 0.8}[kind] + boost):
                self.add_lab_panel(pt, visit_no, adm)

    def add_vitals(self, pt: _Patient, visit_no: int, when: datetime) -> None:
        """One wide row; each measurement is independently missing, height most often."""
        rng, p = self.rng, self.chance
        age = (when - pt.born).days / 365.25
        adult = age >= 18
        taken = when + timedelta(minutes=rng.randint(5, 30))
        bp_sys = round(rng.gauss(pt.bp if adult else 105, 10)) if age >= 3 and p(0.9) else None
        self.out.add(
            vitals, vs_id=next(self.ids["vs"]), vs_guid=self.uid(), pt_seq=pt.seq,
            visit_no=None if p(0.03) else visit_no,
            taken_dttm=self.maybe_bad(0.003, _ts14(taken), "", "00000000000000"),
            pulse=round(rng.gauss(76 if adult else 100, 10)) if p(0.92) else None,
            bp_sys=bp_sys, bp_dia=round(bp_sys * rng.uniform(0.55, 0.7)) if bp_sys else None,
            resp_rate=(rng.randint(12, 20) if adult else rng.randint(18, 30)) if p(0.55) else None,
            temp_f=round(rng.gauss(98.3, 0.5) + (rng.uniform(1, 3) if p(0.05) else 0), 1)
            if p(0.7) else None,
            wt_lb=round((pt.wt if adult else min(pt.wt, 7.5 + 6.5 * age)) + rng.gauss(0, 1.5), 1)
            if p(0.65) else None,
            ht_in=round(pt.ht if adult else min(pt.ht, 20 + 2.7 * age), 1) if p(0.15) else None,
            spo2=min(100, round(rng.gauss(97.5, 1.5))) if p(0.6) else None,
            entered_by=f"RN{rng.randint(100, 180):04d}", del_flg=self.deleted(0.003),
            upd_dttm=self.stamp(taken))

    def add_lab_panel(self, pt: _Patient, visit_no: int, when: datetime) -> None:
        """3-8 results sharing one collection time, built around a typical panel."""
        rng = self.rng
        codes = list(rng.choice(PANELS))
        codes += [c for c in rng.sample(NUMERIC_LABS, 8) if c not in codes]
        codes = codes[:rng.randint(3, 8)]
        if self.chance(0.05):
            codes[-1] = rng.choice(("UDS", "XMISC"))
        collected = when + timedelta(minutes=rng.randint(10, 120))
        collect_txt = self.maybe_bad(0.005, _ts14(collected), "", "00000000000000")
        visit = None if self.chance(0.05) else visit_no
        for code in codes:
            value, flag = self.lab_value(pt, code)
            status = rng.choices("FPCX", (93, 3, 2, 2))[0]
            comments = None
            if status == "X":
                value, flag, comments = "", "", rng.choice(CANCEL_REASONS)
            elif status == "C":
                comments = f"CORRECTED RESULT, PREVIOUSLY REPORTED AS {self.lab_value(pt, code)[0]}"
            elif code == "XMISC":
                comments = rng.choice(SENDOUT_COMMENTS)
            elif self.chance(0.04):
                comments = rng.choice(LAB_COMMENTS)
            units = LABS[code].units
            self.out.add(
                lab_result, res_id=next(self.ids["res"]), res_guid=self.uid(), pt_seq=pt.seq,
                visit_no=visit, test_cd=code, collect_dttm=collect_txt, result_val=value,
                result_units=units if self.chance(0.95) else None,
                abn_flag="" if self.chance(0.08) else flag, res_status=status, comments=comments,
                del_flg=self.deleted(0.003),
                upd_dttm=self.stamp(collected + timedelta(hours=rng.randint(1, 48))))

    def lab_value(self, pt: _Patient, code: str) -> tuple[str, str]:
        """A plausible result text and its H/L/N flag."""
        rng, test = self.rng, LABS[code]
        if code == "UDS":
            return ("POS", "") if self.chance(0.12) else ("NEG", "N")
        if not test.dist:
            return "SEE COMMENT", ""
        if test.censored and self.chance(0.01):
            return test.censored, "H" if test.censored[0] == ">" else "L"
        lo, hi, mode = pt.labs.get(code, test.dist)
        if self.chance(0.8):  # most results sit near the usual value; the rest span the range
            lo, hi = mode - (mode - lo) * 0.35, mode + (hi - mode) * 0.35
        text = f"{rng.triangular(lo, hi, mode):.{test.decimals}f}"
        value = float(text)
        if test.ref_low is not None and value < test.ref_low:
            return text, "L"
        if test.ref_high is not None and value > test.ref_high:
            return text, "H"
        return text, "N"


# --- Public entry point -------------------------------------------------------------------

def _fill(conn: Connection, patients: int, seed: int) -> dict[str, int]:
    """Create the tables, load them, then index them.

    Indexing after the bulk load is faster, and creating indexes in name order
    (SQLAlchemy keeps them in a set) makes the SQLite file itself reproducible.
    """
    for table in metadata.sorted_tables:
        conn.execute(CreateTable(table))
    hospital = _Hospital(random.Random(seed), out := _Writer(conn))
    hospital.add_reference_tables()
    prev = None
    for seq in range(1, patients + 1):
        prev = hospital.add_patient(seq, prev)
    counts = out.close()
    for table in metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda ix: ix.name):
            index.create(conn)
    return counts


def _fast_pragmas(dbapi_conn, _record) -> None:
    """The file is private until renamed into place, so durability is pointless."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=OFF")
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


def _generate_sqlite_file(path: str, patients: int, seed: int) -> dict[str, int]:
    """Build in a temp file next to ``path`` then rename, so readers never see half a file."""
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        engine = create_engine(URL.create("sqlite", database=tmp))
        event.listen(engine, "connect", _fast_pragmas)
        try:
            with engine.begin() as conn:
                counts = _fill(conn, patients, seed)
                conn.exec_driver_sql("ANALYZE")  # planner statistics for the facade's queries
        finally:
            engine.dispose()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return counts


def _generate_in_place(engine: Engine, patients: int, seed: int) -> dict[str, int]:
    """Recreate the demo tables in one transaction (atomic where DDL is transactional)."""
    with engine.begin() as conn:
        metadata.drop_all(conn)
        return _fill(conn, patients, seed)


def generate(target: str | os.PathLike | Engine, patients: int = 1000,
             seed: int = DEMO_SEED) -> dict[str, int]:
    """Write the demo schema and data; return the row count per table.

    ``target`` is a SQLite file path, a SQLAlchemy URL string, or an Engine.
    """
    if isinstance(target, Engine):
        return _generate_in_place(target, patients, seed)
    target = os.fspath(target)
    if "://" not in target:
        return _generate_sqlite_file(target, patients, seed)
    engine = create_engine(target)
    try:
        return _generate_in_place(engine, patients, seed)
    finally:
        engine.dispose()
