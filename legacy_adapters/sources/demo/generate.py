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
import math
import os
import random
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.schema import CreateTable

from .records import add_records
from .schema import (
    alg_cd,
    allergy,
    dept_loc,
    enc_dx,
    enc_visit,
    immun,
    lab_order,
    lab_panel_cd,
    lab_result,
    lab_test_cd,
    med_cd,
    metadata,
    org_mstr,
    prob_list,
    proc_cd,
    proc_log,
    pt_master,
    rx_order,
    soc_hx,
    staff,
    vac_cd,
    vitals,
)

DEMO_SEED = 20240101
TODAY = datetime(2026, 6, 30, 17, 0, 0)  # fixed reference "now": output never depends on the clock
CHUNK_ROWS = 10_000  # rows per executemany: bounded memory at any size
CHRONIC_SEQ = 1  # pt_seq of the long-history patient used for $everything/paging benchmarks

# --- Reference data -----------------------------------------------------------------------

FIRST_F = (
    "MARY",
    "PATRICIA",
    "LINDA",
    "BARBARA",
    "ELIZABETH",
    "JENNIFER",
    "MARIA",
    "SUSAN",
    "MARGARET",
    "DOROTHY",
    "LISA",
    "NANCY",
    "KAREN",
    "BETTY",
    "HELEN",
    "SANDRA",
    "DONNA",
    "CAROL",
    "ANA",
    "ROSA",
    "EMMA",
    "OLIVIA",
    "SOPHIA",
    "MIA",
    "CHLOE",
    "GRACE",
    "LILY",
    "ZOE",
    "NGOC ANH",
    "ANNE-MARIE",
)
FIRST_M = (
    "JAMES",
    "JOHN",
    "ROBERT",
    "MICHAEL",
    "WILLIAM",
    "DAVID",
    "RICHARD",
    "JOSEPH",
    "THOMAS",
    "CHARLES",
    "DANIEL",
    "MATTHEW",
    "ANTHONY",
    "MARK",
    "JOSE",
    "LUIS",
    "CARLOS",
    "PAUL",
    "STEVEN",
    "KEVIN",
    "LIAM",
    "NOAH",
    "ETHAN",
    "LUCAS",
    "MASON",
    "OWEN",
    "MINH",
    "JEAN-PAUL",
    "DE SHAWN",
    "AHMED",
)
LAST = (
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
    "WHITE",
    "HARRIS",
    "SANCHEZ",
    "CLARK",
    "RAMIREZ",
    "LEWIS",
    "ROBINSON",
    "WALKER",
    "YOUNG",
    "ALLEN",
    "KING",
    "WRIGHT",
    "SCOTT",
    "TORRES",
    "NGUYEN",
    "HILL",
    "FLORES",
    "GREEN",
    "ADAMS",
    "NELSON",
    "BAKER",
    "HALL",
    "RIVERA",
    "CAMPBELL",
    "MITCHELL",
    "CARTER",
    "ROBERTS",
    "O'CONNOR",
    "MC DONALD",
    "DE LA CRUZ",
    "SMITH-JONES",
    "VAN DYKE",
    "ST. JOHN",
)
STREETS = (
    "MAPLE",
    "OAK",
    "PINE",
    "CEDAR",
    "ELM",
    "WASHINGTON",
    "LAKE",
    "HILL",
    "PARK",
    "MAIN",
    "CHURCH",
    "MILL",
    "RIVER",
    "SPRING",
    "CENTER",
    "HIGHLAND",
    "SUNSET",
    "LINCOLN",
    "WALNUT",
    "CHESTNUT",
)
STREET_SUFFIX = ("ST", "AVE", "RD", "DR", "LN", "CT", "BLVD", "WAY")
CITIES = (
    ("SPRINGFIELD", "IL", "627"),
    ("RIVERSIDE", "CA", "925"),
    ("FAIRVIEW", "TN", "370"),
    ("GREENVILLE", "SC", "296"),
    ("CLINTON", "IA", "527"),
    ("MADISON", "WI", "537"),
    ("GEORGETOWN", "KY", "403"),
    ("SALEM", "OR", "973"),
    ("ARLINGTON", "TX", "760"),
    ("ASHLAND", "OH", "448"),
    ("BRISTOL", "CT", "060"),
    ("DOVER", "DE", "199"),
    ("MILFORD", "MA", "017"),
    ("OXFORD", "MS", "386"),
)
REMARKS = (
    "PT PREFERS AM APPTS",
    "INTERPRETER NEEDED - SPANISH",
    "INTERPRETER NEEDED - VIETNAMESE",
    "HARD OF HEARING",
    "CALL CELL, NOT HOME #",
    "NO SHOW X2 - CALL TO CONFIRM",
    "WHEELCHAIR ACCESS NEEDED",
    "SELF PAY",
    "pt requests female provider",
)
REG_USERS = ("REGCLK01", "REGCLK02", "HIMCORR", "CONV1998", "ADTIFACE")
SPECIALTIES = (
    ("FAMILY MEDICINE", "clinic"),
    ("INTERNAL MEDICINE", "clinic"),
    ("PEDIATRICS", "clinic"),
    ("EMERGENCY MEDICINE", "ed"),
    ("HOSPITALIST", "hosp"),
    ("CARDIOLOGY", "hosp"),
    ("ENDOCRINOLOGY", "clinic"),
    ("NEPHROLOGY", "hosp"),
)
COMPLAINTS = {
    "O": (
        "ROUTINE F/U",
        "ANNUAL PHYSICAL",
        "HTN F/U",
        "DM CHECK",
        "MED REFILL",
        "LAB REVIEW",
        "cough x 1 wk",
        "KNEE PAIN",
        "rash on arms",
        "PRE-OP CLEARANCE",
        "FLU SHOT",
    ),
    "E": ("CHEST PAIN", "SOB", "ABD PAIN", "FALL AT HOME", "FEVER", "laceration L hand", "MVC - NECK PAIN", "DIZZINESS", "N/V/D"),
    "I": ("CHF EXACERBATION", "PNEUMONIA", "CHEST PAIN R/O MI", "CELLULITIS LLE", "COPD EXAC", "DKA", "SEPSIS?", "ELECTIVE TKA RIGHT"),
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
PANELS = (
    ("GLU", "NA", "K", "CREAT", "BUN"),
    ("CHOL", "HDL", "LDL", "TRIG"),
    ("WBC", "HGB", "PLT"),
    ("GLU", "HGBA1C", "CREAT"),
    ("ALT", "AST", "TSH"),
)
LAB_COMMENTS = (
    "SPECIMEN SLIGHTLY HEMOLYZED",
    "FASTING",
    "NON-FASTING",
    "RESULT VERIFIED BY REPEAT ANALYSIS",
    "CALLED TO DR OFFICE",
    "LIPEMIC SPECIMEN",
)
CANCEL_REASONS = ("CANCELLED - SPECIMEN HEMOLYZED", "CANCELLED - QNS", "CANCELLED - DUPLICATE ORDER", "CANCELLED - SPECIMEN CLOTTED")
SENDOUT_COMMENTS = ("SENT TO REFERENCE LAB - SEE SCANNED REPORT", "VIT D 25-OH: 28 NG/ML", "RESULT IN MEDIA TAB", "ANA SCREEN NEGATIVE")

# local code, description, RxNorm (None where the pharmacy never mapped it), form, sig, qty
MEDS = (
    ("100234", "METFORMIN HCL ER 500MG TAB 24HR", "860975", "TAB", "1 TAB PO QPM WITH MEAL", 90),
    ("100871", "LISINOPRIL 10MG TAB", "314076", "TAB", "1 TAB PO QD", 90),
    ("101122", "AMLODIPINE BESYLATE 5MG TAB", "197361", "TAB", "1 TAB PO QD", 30),
    ("101390", "HYDROCHLOROTHIAZIDE 25MG TAB", "310798", "TAB", "1 TAB PO QAM", 90),
    ("102045", "ATORVASTATIN 80MG TAB", "259255", "TAB", "1 TAB PO QHS", 90),
    ("102046", "SIMVASTATIN 10MG TAB", "314231", "TAB", "1 TAB PO QHS", 30),
    ("102310", "CLOPIDOGREL 75MG TAB", "309362", "TAB", "1 TAB PO QD", 30),
    ("103007", "ALBUTEROL HFA 90MCG/ACT INH 200 ACT", "745679", "INH", "2 PUFFS INH Q4-6H PRN SOB/WHEEZE", 1),
    ("104410", "ACETAMINOPHEN 325MG TAB", "313782", "TAB", "2 TABS PO Q6H PRN PAIN", 60),
    ("104522", "NAPROXEN SODIUM 220MG TAB", "849574", "TAB", "1 TAB PO BID PRN PAIN W/ FOOD", 30),
    ("105118", "LEVOTHYROXINE 50MCG TAB", None, "TAB", "1 TAB PO QAM ON EMPTY STOMACH", 90),
    ("105600", "OMEPRAZOLE 20MG CAP DR", None, "CAP", "1 CAP PO QD BEFORE BREAKFAST", 30),
    ("190001", "MAGIC MOUTHWASH (COMPOUNDED) 240ML", None, "SUSP", "SWISH & SPIT 10ML Q4H PRN", 1),
)
SIGS = {m[0]: (m[4], m[5]) for m in MEDS}
MED_DESC = {m[0]: m[1] for m in MEDS}


# Facilities: the hospital, its outpatient network and the reference lab it sends tests to.
ORGS: tuple[tuple[str, str, str | None, str, str, str, str, str | None], ...] = (
    ("GMH", "GENERAL MEMORIAL HOSPITAL", "1487653210", "1200 HOSPITAL DR", "SPRINGFIELD", "IL", "62701", "(555) 200-1000"),
    ("GMHCLN", "GMH COMMUNITY CLINICS", None, "45 MAPLE AVE", "SPRINGFIELD", "IL", "62704", "(555) 200-2000"),
    ("REFLAB", "STATEWIDE REFERENCE LABORATORY", "1962843577", "9 INDUSTRIAL PKWY", "DOVER", "DE", "19901", None),
)
# department code, name, type (CLN clinic, ED emergency, INP ward, LAB laboratory), organization
DEPTS = (
    ("FMC1", "FAMILY MED CLINIC - NORTH", "CLN", "GMHCLN"),
    ("FMC2", "FAMILY MED CLINIC - SOUTH", "CLN", "GMHCLN"),
    ("IMC", "INTERNAL MED CLINIC", "CLN", "GMHCLN"),
    ("ED", "EMERGENCY DEPT", "ED", "GMH"),
    ("3W", "3 WEST MED/SURG", "INP", "GMH"),
    ("4E", "4 EAST TELEMETRY", "INP", "GMH"),
    ("ICU", "INTENSIVE CARE UNIT", "INP", "GMH"),
    ("LAB", "CORE LABORATORY", "LAB", "GMH"),
)
DEPTS_BY_KIND = {"O": ("FMC1", "FMC2", "IMC"), "E": ("ED",), "I": ("3W", "4E", "ICU")}
DISPOSITIONS = {"E": ("HOM", "HOM", "HOM", "ADM", "AMA", "TRF"), "I": ("HOM", "HOM", "SNF", "HHC", "EXP", "TRF")}
# The order entry system's panel codes, keyed by the PANELS entry they order.
LAB_PANELS = (
    ("BMP", "BASIC METABOLIC PANEL", "51990-0"),
    ("LIPID", "LIPID PANEL", "57698-3"),
    ("CBC", "CBC W/O DIFF", "58410-2"),
    ("DMMON", "DIABETES MONITORING", None),
    ("LFTTSH", "LIVER/THYROID SCREEN", None),
)
# local code, description, SNOMED CT (None: never coded), category
ALLERGENS = (
    ("PCN", "PENICILLIN", "91936005", "D"),
    ("SULFA", "SULFONAMIDES", "91939003", "D"),
    ("ASA", "ASPIRIN", "293586001", "D"),
    ("CODEINE", "CODEINE", "300916003", "D"),
    ("LATEX", "LATEX", "111088007", "E"),
    ("PNUT", "PEANUTS", "91935009", "F"),
    ("SHELLF", "SHELLFISH", "300913006", "F"),
    ("EGG", "EGGS", "91930004", "F"),
    ("CATS", "CAT DANDER", None, "E"),
    ("IVDYE", "IV CONTRAST DYE", "293637006", "D"),
    ("NKA", "NO KNOWN ALLERGIES", "716186003", None),
)
REACTIONS = ("HIVES", "RASH", "ANAPHYLAXIS", "SOB", "N/V", "ITCHING", "SWELLING OF LIPS", None)
# local vaccine code, description, CVX
VACCINES = (
    ("FLU", "INFLUENZA, SEASONAL, INJ", "141"),
    ("FLUHD", "INFLUENZA HIGH DOSE 65+", "135"),
    ("COVID", "COVID-19 MRNA VACCINE", "213"),
    ("TDAP", "TDAP", "115"),
    ("PPSV23", "PNEUMOCOCCAL POLYSACCHARIDE PPV23", "33"),
    ("ZOSTER", "ZOSTER RECOMBINANT", "187"),
    ("HEPB", "HEPATITIS B, ADULT", "43"),
    ("MMR", "MMR", "03"),
    ("PPD", "TB SKIN TEST (PPD)", None),
)
# local procedure code, description, CPT (None: home-grown only), SNOMED CT
PROCEDURES = (
    ("ECG12", "ECG 12 LEAD W/ INTERP", "93000", "268400002"),
    ("CXR2V", "CHEST X-RAY 2 VIEWS", "71046", "399208008"),
    ("LAC-S", "LACERATION REPAIR SIMPLE", "12001", "288086009"),
    ("IVINS", "IV INSERTION", "36000", "392231009"),
    ("COLON", "COLONOSCOPY, DIAGNOSTIC", "45378", "73761001"),
    ("TKA-R", "TOTAL KNEE ARTHROPLASTY RIGHT", "27447", "609588000"),
    ("SPLNT", "SPLINT APPLICATION", None, "79321009"),
    ("NEB", "NEBULIZER TREATMENT", "94640", "56251003"),
)
PROCS_BY_KIND = {
    "O": ("ECG12", "COLON", "NEB"),
    "E": ("ECG12", "CXR2V", "LAC-S", "IVINS", "SPLNT", "NEB"),
    "I": ("ECG12", "CXR2V", "IVINS", "TKA-R"),
}
CLIN_USERS = ("RN0112", "RN0140", "MA0021", "PHARM02", "INTFACE", "LABIFACE")


class Problem(NamedTuple):
    icd10: str
    snomed: str
    local: str | None  # some clinics coded problems with home-grown codes only
    desc: str
    chronic: bool
    meds: tuple[str, ...] = ()
    labs: dict | None = None  # lab distributions this problem shifts


PROBLEMS = {
    "DM2": Problem(
        "E11.9",
        "44054006",
        "DMCTRL",
        "DIABETES MELLITUS TYPE 2 W/O COMPLICATIONS",
        True,
        ("100234",),
        {"GLU": (100, 250, 150), "HGBA1C": (6.2, 11.0, 7.4)},
    ),
    "HTN": Problem("I10", "38341003", "HTN2", "ESSENTIAL HYPERTENSION", True, ("100871", "101122", "101390")),
    "HLD": Problem(
        "E78.5",
        "55822004",
        "LIPID1",
        "HYPERLIPIDEMIA, UNSPECIFIED",
        True,
        ("102045", "102046"),
        {"LDL": (100, 220, 150), "CHOL": (180, 300, 235)},
    ),
    "ASTH": Problem("J45.909", "195967001", None, "ASTHMA, UNCOMPLICATED", True, ("103007",)),
    "COPD": Problem("J44.9", "13645005", "COPD", "COPD", True, ("103007",)),
    "DEP": Problem("F32.9", "35489007", "DEPR", "MAJOR DEPRESSIVE DISORDER", True),
    "HYPO": Problem("E03.9", "40930008", None, "HYPOTHYROIDISM", True, ("105118",), {"TSH": (1.5, 12.0, 5.0)}),
    "GERD": Problem("K21.9", "235595009", "GERD", "GERD W/O ESOPHAGITIS", True, ("105600",)),
    "CAD": Problem("I25.10", "53741008", "CAD", "CORONARY ARTERY DISEASE", True, ("102310",)),
    "CKD": Problem(
        "N18.30", "433144002", "CKD3", "CHRONIC KIDNEY DISEASE, STAGE 3", True, (), {"CREAT": (1.3, 3.2, 1.8), "BUN": (18, 60, 30)}
    ),
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

    def add(self, table: Table, **row: Any) -> None:
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
    problems: list = field(default_factory=list)  # PROBLEMS keys


class _Hospital:
    """Draws every row from one RNG in a fixed order and hands it to the writer."""

    def __init__(
        self,
        rng: random.Random,
        out: _Writer,
        more: random.Random,
        reporting: random.Random | None = None,
        growth: random.Random | None = None,
    ):
        # ``more`` draws everything added after the original tables, so the older tables'
        # contents stay exactly as they were for a given seed; ``reporting`` draws the columns
        # added later still (race and ethnicity, printed ranges, head circumference), likewise,
        # and ``growth`` the children's growth-chart percentiles, added after those.
        self.rng, self.out, self.more = rng, out, more
        self.reporting = reporting or random.Random("reporting")
        self.growth = growth or random.Random("growth")
        self.growth_track: dict[int, float] = {}  # each child's own percentile, which visits scatter around
        self.ids = {name: itertools.count(1) for name in ("visit", "res", "vs", "rx", "prob", "dx", "ord", "sh", "alg", "imm", "proc")}
        self.doctors: dict[str, list[str]] = {"clinic": [], "ed": [], "hosp": []}

    # small helpers
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def uid2(self) -> str:
        return str(uuid.UUID(int=self.more.getrandbits(128), version=4))

    def stamp2(self, when: datetime) -> str:
        return _ts14(min(when + timedelta(minutes=self.more.randint(5, 4000)), TODAY))

    def deleted2(self, p: float = 0.005) -> str:
        return "Y" if self.more.random() < p else "N"

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
            self.out.add(
                lab_test_cd,
                test_cd=t.code,
                test_desc=t.desc,
                loinc_cd=t.loinc,
                dflt_units=t.units,
                ref_low=t.ref_low,
                ref_high=t.ref_high,
                active_yn="Y",
            )
        for code, desc, rxnorm, form, _sig, _qty in MEDS:
            self.out.add(med_cd, med_cd=code, med_desc=desc, rxnorm_cd=rxnorm, form_cd=form)
        for i in range(40):
            specialty, pool = SPECIALTIES[i % len(SPECIALTIES)]
            code = f"DR{1003 + 7 * i}"
            self.doctors[pool].append(code)
            last, first = self.rng.choice(LAST), self.rng.choice(FIRST_F + FIRST_M)
            npi = _npi(f"1{self.rng.randrange(10**8):08d}")
            more = self.more
            self.out.add(
                staff,
                dr_cd=code,
                last_nm=last,
                first_nm=first,
                npi=npi if more.random() > 0.1 else more.choice((None, "", "0000000000")),
                specialty=specialty,
                phone_ofc=f"(555) 200-{more.randrange(3000, 4000)}" if more.random() < 0.7 else None,
                org_cd="GMHCLN" if pool == "clinic" else "GMH",
                active_yn="N" if more.random() < 0.1 else "Y",
            )
        for org_cd, name, org_npi, addr, city, st, zip_cd, phone in ORGS:
            self.out.add(
                org_mstr,
                org_cd=org_cd,
                org_nm=name,
                npi=org_npi,
                addr_line1=addr,
                city=city,
                st_cd=st,
                zip_cd=zip_cd,
                phone=phone,
                active_yn="Y",
            )
        for dept_cd, name, typ, org_cd in DEPTS:
            self.out.add(
                dept_loc,
                dept_cd=dept_cd,
                dept_nm=name,
                dept_typ=typ,
                org_cd=org_cd,
                phone=f"(555) 200-{1100 + len(dept_cd) * 37}",
                active_yn="Y",
            )
        for code, desc, loinc in LAB_PANELS:
            self.out.add(lab_panel_cd, panel_cd=code, panel_desc=desc, loinc_cd=loinc)
        for code, desc, snomed, cat in ALLERGENS:
            self.out.add(alg_cd, alg_cd=code, alg_desc=desc, snomed_cd=snomed, alg_cat=cat)
        for code, desc, cvx in VACCINES:
            self.out.add(vac_cd, vac_cd=code, vac_desc=desc, cvx_cd=cvx)
        for code, desc, cpt, snomed in PROCEDURES:
            self.out.add(proc_cd, proc_cd=code, proc_desc=desc, cpt_cd=cpt, snomed_cd=snomed)

    # patients
    def add_patient(self, seq: int, prev: _Patient | None) -> _Patient:
        rng = self.rng
        chronic = seq == CHRONIC_SEQ
        dup_of = prev if (prev and prev.seq != CHRONIC_SEQ and not (prev.merged or prev.deleted) and self.chance(0.005)) else None
        if dup_of:  # same person registered twice, later merged by HIM
            demo, born = dict(dup_of.demo), dup_of.born
        else:
            born, demo = self.demographics(chronic)
        years = 20 if chronic else 1 if dup_of else rng.randint(1, 8)
        since = max(TODAY - timedelta(days=365 * years), born + timedelta(days=1))
        adult_ht = rng.uniform(64, 75) if demo["sex_cd"] == "M" else rng.uniform(59, 70)
        pt = _Patient(
            seq=seq,
            mrn=f"MRN{seq + 1000:07d}",
            born=born,
            since=since,
            demo=demo,
            pcp=rng.choice(self.doctors["clinic"]),
            deleted=not (chronic or dup_of) and self.chance(0.01),  # merged rows stay 'N'
            merged=dup_of is not None,
            bp=rng.randint(105, 135),
            ht=adult_ht,
            wt=rng.uniform(19, 38) * adult_ht**2 / 703,
        )
        remarks = f"DUP REG - MERGED INTO {dup_of.mrn}" if dup_of else rng.choice(REMARKS) if self.chance(0.12) else None
        self.out.add(
            pt_master,
            pt_seq=seq,
            pt_guid=self.uid(),
            mrn=pt.mrn,
            **demo,
            del_flg="Y" if pt.deleted else "N",
            merged_to_seq=dup_of.seq if dup_of else None,
            remarks=remarks,
            upd_dttm=_ts14(self.between(since, TODAY)),
            upd_user=rng.choice(REG_USERS),
        )
        problems = self.add_problems(pt, chronic)
        pt.problems = problems
        if "HTN" in problems:
            pt.bp += 18
        for key in problems:
            pt.labs.update(PROBLEMS[key].labs or {})
        self.add_encounters(pt, per_year=50 if chronic else rng.uniform(1.0, 2.5), boost=0.5 if chronic else 0.0)
        self.add_history(pt)
        return pt

    def demographics(self, chronic: bool) -> tuple[datetime, dict]:
        rng = self.rng
        sex = rng.choices(("F", "M", "U", None), weights=(510, 470, 15, 5))[0]
        first = rng.choice(FIRST_M if sex == "M" else FIRST_F if sex == "F" else FIRST_F + FIRST_M)
        lo, hi = (date(1948, 1, 1), date(1958, 12, 31)) if chronic else (date(1930, 1, 1), date(2024, 12, 31))
        born = datetime.combine(lo + timedelta(days=rng.randrange((hi - lo).days)), time())
        adult = (TODAY - born).days > 18 * 365
        city, state, zip3 = rng.choice(CITIES)
        addr = f"{rng.randint(10, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_SUFFIX)}"
        zip_cd = f"{zip3}{rng.randrange(100):02d}"
        return born, dict(
            last_nm=rng.choice(LAST),
            first_nm=first,
            mid_init=rng.choice("ABCDEFGHJKLMNPRSTW") if self.chance(0.6) else None,
            sex_cd=sex,
            dob=_d8(born) if chronic else self.maybe_bad(0.01, _d8(born), "", "00000000"),
            addr_line1=addr + (f" APT {rng.randint(1, 40)}" if self.chance(0.1) else ""),
            city=city,
            st_cd=state,
            zip_cd=zip_cd + (f"-{rng.randrange(10000):04d}" if self.chance(0.2) else ""),
            phone_home=(f"(555) {rng.randint(200, 999)}-{rng.randrange(10000):04d}" if self.chance(0.93) else None),
            mar_stat=rng.choice(("S", "M", "M", "D", "W", None) if adult else ("S", None)),
            **self.reported_demographics(sex),
        )

    # problem list and medications
    def reported_demographics(self, sex: str | None) -> dict:
        """Race, ethnicity and sex at birth as the registration screen keeps them (older rows: blank)."""
        draw = self.reporting
        if draw.random() < 0.03:
            return dict(race_cd=None, ethnic_cd=None, sex_birth=None)
        birth = sex if sex in ("M", "F") and draw.random() > 0.005 else {"M": "F", "F": "M"}.get(sex or "", "U")
        return dict(
            race_cd=draw.choices("WBAIPOUD", (60, 13, 6, 1, 1, 5, 9, 5))[0],
            ethnic_cd=draw.choices("HNUD", (18, 70, 7, 5))[0],
            sex_birth=birth,
        )

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
            onset = self.between(max(pt.born, pt.since - timedelta(days=3650)) if prob.chronic else pt.since, TODAY - timedelta(days=14))
            stat = rng.choices("ARI", (90, 0, 10))[0] if prob.chronic else rng.choices("ARI", (10, 85, 5))[0]
            resolved = onset + timedelta(days=rng.randint(7, 60)) if stat == "R" else None
            style = rng.random()
            if style < 0.55:
                codes = f"ICD10:{prob.icd10};SNOMED-CT:{prob.snomed}"
            elif style < 0.9 or not prob.local:
                codes = f"ICD10:{prob.icd10}"
            else:
                codes = f"LOCAL:{prob.local}"
            self.out.add(
                prob_list,
                prob_id=next(self.ids["prob"]),
                prob_guid=self.uid(),
                pt_seq=pt.seq,
                dx_codes=codes,
                prob_desc=prob.desc,
                onset_dt=self.maybe_bad(0.1, _d8(onset), ""),
                resolved_dt=_d8(resolved) if resolved else None,
                prob_stat=stat,
                del_flg=self.deleted(0.01),
                upd_dttm=self.stamp(resolved or onset),
                entered_dt=(_d8(min(onset + timedelta(days=self.more.randint(0, 30)), TODAY)) if self.more.random() > 0.05 else ""),
                upd_user=self.more.choice(CLIN_USERS),
            )
            if prob.meds and self.chance(0.8):
                self.add_prescriptions(pt, rng.choice(prob.meds), onset, renew=prob.chronic)
        return keys

    def add_prescriptions(self, pt: _Patient, med: str, start: datetime, renew: bool) -> None:
        """Chronic drugs are re-ordered about yearly; acute ones are a single short course."""
        rng = self.rng
        ordered = max(start, pt.since)
        while True:
            stop: datetime | None
            if not renew:
                stop, stat = ordered + timedelta(days=10), "C"
            elif self.chance(0.06):
                stop, stat = ordered + timedelta(days=rng.randint(10, 300)), "D"
            else:
                stop, stat = ordered + timedelta(days=rng.randint(330, 400)), "C"
            if stop > TODAY:
                stop, stat = None, "A"
            sig, qty = SIGS[med]
            free_text = self.more.random() < 0.03  # typed in by hand, no drug code
            self.out.add(
                rx_order,
                rx_id=next(self.ids["rx"]),
                rx_guid=self.uid(),
                pt_seq=pt.seq,
                visit_no=None,
                med_cd=None if free_text else med,
                drug_txt=MED_DESC[med] if free_text else None,
                sig_text=sig,
                qty=qty,
                refills=rng.randint(0, 5) if renew else 0,
                order_dt=_d8(ordered),
                stop_dt=_d8(stop) if stop else rng.choice((None, "")),
                rx_stat=stat,
                ordering_dr=pt.pcp if self.chance(0.8) else rng.choice(self.doctors["clinic"]),
                del_flg=self.deleted(),
                upd_dttm=self.stamp(stop or ordered),
                upd_user=self.more.choice(("PHARM02", "RXIFACE", "MA0021")),
            )
            if stop is None or stat != "C" or not renew:
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
                adm = adm.replace(hour=rng.randint(8, 16), minute=rng.randrange(0, 60, 15), second=0, microsecond=0)
                stay = timedelta(minutes=rng.randint(15, 90))
            else:
                hours = rng.uniform(1.5, 10) if kind == "E" else rng.uniform(24, 216)
                stay = timedelta(hours=hours)
            dsch = adm + stay
            visit_no = next(self.ids["visit"])
            pool = {"O": "clinic", "E": "ed", "I": "hosp"}[kind]
            doctor = pt.pcp if kind == "O" and self.chance(0.7) else rng.choice(self.doctors[pool])
            more = self.more
            guid = self.uid()
            admitted = self.maybe_bad(0.003, _ts19(adm), "0000-00-00 00:00:00")
            discharged = rng.choice((None, "")) if dsch > TODAY or self.chance(0.01) else _ts19(dsch)
            self.out.add(
                enc_visit,
                visit_no=visit_no,
                visit_guid=guid,
                pt_seq=pt.seq,
                adm_dt=admitted,
                dsch_dt=discharged,
                visit_type=kind,
                attend_dr=doctor,
                chief_cmplnt=rng.choice(COMPLAINTS[kind]) if self.chance(0.95) else None,
                dept_cd=more.choice(DEPTS_BY_KIND[kind]) if more.random() > 0.02 else None,
                dsch_disp=more.choice(DISPOSITIONS[kind]) if kind in DISPOSITIONS and discharged else None,
                del_flg=self.deleted(),
                upd_dttm=self.stamp(min(dsch, TODAY)),
                upd_user=more.choice(REG_USERS),
            )
            self.add_diagnoses(pt, visit_no, kind, adm)
            if (kind != "O" and more.random() < 0.3) or more.random() < 0.03:
                self.add_procedure(pt, visit_no, kind, adm + stay * more.random(), doctor)
            if self.chance(0.75 + boost):
                self.add_vitals(pt, visit_no, adm)
            if self.chance({"O": 0.15, "E": 0.5, "I": 0.8}[kind] + boost):
                self.add_lab_panel(pt, visit_no, adm, doctor)

    def add_vitals(self, pt: _Patient, visit_no: int, when: datetime) -> None:
        """One wide row; each measurement is independently missing, height most often."""
        rng, p = self.rng, self.chance
        age = (when - pt.born).days / 365.25
        adult = age >= 18
        taken = when + timedelta(minutes=rng.randint(5, 30))
        bp_sys = round(rng.gauss(pt.bp if adult else 105, 10)) if age >= 3 and p(0.9) else None
        row = dict(
            vs_id=next(self.ids["vs"]),
            vs_guid=self.uid(),
            pt_seq=pt.seq,
            visit_no=None if p(0.03) else visit_no,
            taken_dttm=self.maybe_bad(0.003, _ts14(taken), "", "00000000000000"),
            pulse=round(rng.gauss(76 if adult else 100, 10)) if p(0.92) else None,
            bp_sys=bp_sys,
            bp_dia=round(bp_sys * rng.uniform(0.55, 0.7)) if bp_sys else None,
            resp_rate=(rng.randint(12, 20) if adult else rng.randint(18, 30)) if p(0.55) else None,
            temp_f=round(rng.gauss(98.3, 0.5) + (rng.uniform(1, 3) if p(0.05) else 0), 1) if p(0.7) else None,
            wt_lb=round((pt.wt if adult else min(pt.wt, 7.5 + 6.5 * age)) + rng.gauss(0, 1.5), 1) if p(0.65) else None,
            ht_in=round(pt.ht if adult else min(pt.ht, 20 + 2.7 * age), 1) if p(0.15) else None,
            spo2=min(100, round(rng.gauss(97.5, 1.5))) if p(0.6) else None,
            entered_by=f"RN{rng.randint(100, 180):04d}",
            head_circ_cm=round(35 + 14 * (1 - math.exp(-1.6 * age)) + self.reporting.gauss(0, 0.8), 1) if age < 3 else None,
            del_flg=self.deleted(0.003),
            upd_dttm=self.stamp(taken),
        )
        self.out.add(vitals, **row, **self.growth_percentiles(pt, age, row))

    def growth_percentiles(self, pt: _Patient, age: float, row: dict[str, Any]) -> dict[str, float | None]:
        """The percentiles the growth-chart screen computes from what was measured: BMI-for-age
        from 2 to 20 years (weight and height), weight-for-length and head circumference under 3."""
        if age >= 20:
            return dict(bmi_pctl=None, wt_len_pctl=None, hc_pctl=None)
        track = self.growth_track.setdefault(pt.seq, self.growth.uniform(5, 95))

        def percentile(measured: bool) -> float | None:
            return round(min(99.9, max(0.1, self.growth.gauss(track, 4))), 1) if measured else None

        both = row["wt_lb"] is not None and row["ht_in"] is not None
        return dict(
            bmi_pctl=percentile(both and age >= 2),
            wt_len_pctl=percentile(both and age < 3),
            hc_pctl=percentile(row["head_circ_cm"] is not None),
        )

    def add_lab_panel(self, pt: _Patient, visit_no: int, when: datetime, doctor: str) -> None:
        """One order: 3-8 results sharing one collection time, built around a typical panel."""
        rng = self.rng
        panel = rng.choice(PANELS)
        codes = list(panel)
        codes += [c for c in rng.sample(NUMERIC_LABS, 8) if c not in codes]
        codes = codes[: rng.randint(3, 8)]
        if self.chance(0.05):
            codes[-1] = rng.choice(("UDS", "XMISC"))
        collected = when + timedelta(minutes=rng.randint(10, 120))
        collect_txt = self.maybe_bad(0.005, _ts14(collected), "", "00000000000000")
        visit = None if self.chance(0.05) else visit_no
        # Results keyed in by hand (about 3%) never got an order number.
        order = None if self.more.random() < 0.03 else next(self.ids["ord"])
        statuses, reported = [], collected
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
            # (draws in the order the columns were always drawn: same seed, same rows)
            res_id, res_guid = next(self.ids["res"]), self.uid()
            units = units if self.chance(0.95) else None
            abn_flag = "" if self.chance(0.08) else flag
            deleted = self.deleted(0.003)
            updated = collected + timedelta(hours=rng.randint(1, 48))
            statuses.append(status)
            reported = max(reported, updated)
            self.out.add(
                lab_result,
                res_id=res_id,
                res_guid=res_guid,
                pt_seq=pt.seq,
                visit_no=visit,
                test_cd=code,
                collect_dttm=collect_txt,
                result_val=value,
                result_units=units,
                abn_flag=abn_flag,
                res_status=status,
                comments=comments,
                ord_no=order,
                ref_rng=self.printed_range(LABS[code]),
                del_flg=deleted,
                upd_dttm=self.stamp(updated),
            )
        if order is not None:
            stat = "X" if set(statuses) == {"X"} else "P" if "P" in statuses else "C" if "C" in statuses else "F"
            self.out.add(
                lab_order,
                ord_no=order,
                ord_guid=self.uid2(),
                acc_no=f"L{order + 2400000:08d}",
                pt_seq=pt.seq,
                visit_no=visit,
                panel_cd=LAB_PANELS[PANELS.index(panel)][0],
                ord_dr=doctor,
                collect_dttm=collect_txt,
                rpt_dttm=_ts14(min(reported, TODAY)) if stat != "X" else None,
                ord_stat=stat,
                del_flg=self.deleted2(0.003),
                upd_dttm=_ts14(min(reported, TODAY)),
                upd_user="LABIFACE",
            )

    # diagnoses, procedures and the clinical history lists (drawn from ``more``)
    def add_diagnoses(self, pt: _Patient, visit_no: int, kind: str, adm: datetime) -> None:
        """Coded at discharge: a visit's reasons, mostly from the problem list."""
        more = self.more
        count = more.choices((0, 1, 2, 3), (20, 50, 20, 10) if kind == "O" else (5, 35, 35, 25))[0]
        pool = list(pt.problems) or list(ACUTE_PROBLEMS)
        keys = more.sample(pool, min(count, len(pool)))
        if kind != "O" and more.random() < 0.4:
            keys.append(more.choice(ACUTE_PROBLEMS))
        for rank, key in enumerate(dict.fromkeys(keys), start=1):
            prob = PROBLEMS[key]
            codes = f"ICD10:{prob.icd10}" if more.random() < 0.8 else f"ICD10:{prob.icd10};SNOMED-CT:{prob.snomed}"
            entered = min(adm + timedelta(hours=more.randint(1, 72)), TODAY)
            self.out.add(
                enc_dx,
                dx_id=next(self.ids["dx"]),
                dx_guid=self.uid2(),
                visit_no=visit_no,
                pt_seq=pt.seq,
                dx_rank=rank,
                dx_codes=codes,
                dx_desc=prob.desc,
                ent_dttm=_ts14(entered) if more.random() > 0.01 else "00000000000000",
                del_flg=self.deleted2(),
                upd_dttm=self.stamp2(entered),
                upd_user=more.choice(("HIMCODE1", "HIMCODE2", "ADTIFACE")),
            )

    def add_procedure(self, pt: _Patient, visit_no: int, kind: str, when: datetime, doctor: str) -> None:
        more = self.more
        stat = more.choices("CXI", (92, 5, 3))[0]
        self.out.add(
            proc_log,
            proc_id=next(self.ids["proc"]),
            proc_guid=self.uid2(),
            pt_seq=pt.seq,
            visit_no=visit_no if more.random() > 0.05 else None,
            proc_cd=more.choice(PROCS_BY_KIND[kind]),
            perf_dttm=(when.strftime("%Y%m%d%H%M") if more.random() > 0.01 else "000000000000"),
            perf_dr=doctor if more.random() > 0.1 else None,
            proc_stat=stat,
            del_flg=self.deleted2(),
            upd_dttm=self.stamp2(when),
            upd_user=more.choice(CLIN_USERS),
        )

    def add_history(self, pt: _Patient) -> None:
        """Smoking status, allergies and immunizations, recorded over the patient's history."""
        more = self.more
        span = TODAY - pt.since
        adult = (TODAY - pt.born).days > 18 * 365
        if adult:
            habit = more.choices("NFCSU", (55, 25, 12, 5, 3))[0]
            for _ in range(more.choices((0, 1, 2, 3), (10, 50, 25, 15))[0]):
                recorded = pt.since + span * more.random()
                self.out.add(
                    soc_hx,
                    sh_id=next(self.ids["sh"]),
                    sh_guid=self.uid2(),
                    pt_seq=pt.seq,
                    visit_no=None,
                    tob_use=habit if more.random() > 0.03 else more.choice(("", "?")),
                    ppd=round(more.uniform(0.2, 2), 1) if habit in "CS" else None,
                    rec_dttm=self.maybe_bad2(0.01, _ts14(recorded), "", "00000000000000"),
                    del_flg=self.deleted2(),
                    upd_dttm=self.stamp2(recorded),
                    upd_user=more.choice(CLIN_USERS),
                )
        allergens = (
            []
            if more.random() < 0.15
            else ["NKA"]
            if more.random() < 0.5
            else more.sample([a[0] for a in ALLERGENS[:-1]], more.choices((1, 2, 3), (60, 30, 10))[0])
        )
        for code in allergens:
            entered = pt.since + span * more.random()
            self.out.add(
                allergy,
                alg_id=next(self.ids["alg"]),
                alg_guid=self.uid2(),
                pt_seq=pt.seq,
                alg_cd=code,
                rxn_txt=None if code == "NKA" else more.choice(REACTIONS),
                sev_cd=None if code == "NKA" else more.choice(("MI", "MO", "SV", None, "")),
                alg_stat=more.choices("AIR", (85, 10, 5))[0],
                verif_yn=more.choice("YYYN"),
                entered_dt=_d8(entered) if more.random() > 0.03 else "00000000",
                del_flg=self.deleted2(0.01),
                upd_dttm=self.stamp2(entered),
                upd_user=more.choice(CLIN_USERS),
            )
        age_now = (TODAY - pt.born).days / 365.25
        shots = ["FLU"] * more.randint(0, max(1, span.days // 365)) + ["COVID"] * more.randint(0, 2)
        if adult and more.random() < 0.4:
            shots.append("TDAP")
        if age_now > 65:
            shots += ["FLUHD", "PPSV23"] + (["ZOSTER"] if more.random() < 0.5 else [])
        if more.random() < 0.1:
            shots.append(more.choice(("HEPB", "MMR", "PPD")))
        for code in shots:
            given = pt.since + span * more.random()
            stat = more.choices("GRN", (92, 6, 2))[0]
            historical = stat == "G" and more.random() < 0.15
            self.out.add(
                immun,
                imm_id=next(self.ids["imm"]),
                imm_guid=self.uid2(),
                pt_seq=pt.seq,
                visit_no=None,
                vac_cd=code,
                admin_dt=self.maybe_bad2(0.01, given.strftime("%Y-%m-%d"), "", "0000-00-00"),
                lot_no=(f"{more.choice('ABCEKMU')}{more.randrange(10**6):06d}" if stat == "G" and not historical else None),
                imm_stat=stat,
                refuse_rsn={"R": "PO", "N": more.choice(("MP", "OS"))}.get(stat),
                hist_yn="Y" if historical else "N",
                given_by=None if historical or stat != "G" else more.choice(CLIN_USERS[:3]),
                del_flg=self.deleted2(),
                upd_dttm=self.stamp2(given),
                upd_user=more.choice(CLIN_USERS),
            )

    def maybe_bad2(self, p: float, good: str, *bad: str) -> str:
        return self.more.choice(bad) if self.more.random() < p else good

    def printed_range(self, test: LabTest) -> str | None:
        """The reference range as the analyser printed it beside the result (a few are blank)."""
        draw = self.reporting.random()
        if draw < 0.04:
            return None
        if test.code == "UDS":
            return "NEG" if draw < 0.6 else "Neg"
        if test.ref_low is not None and test.ref_high is not None:
            return f"{test.ref_low}-{test.ref_high}" if draw < 0.9 else f"{test.ref_low} - {test.ref_high}"
        if test.ref_high is not None:
            return f"<{test.ref_high}" if draw < 0.7 else f"<={test.ref_high}"
        if test.ref_low is not None:
            return f">={test.ref_low}" if draw < 0.7 else f">{test.ref_low}"
        return "SEE REPORT" if draw < 0.5 else None

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
    hospital = _Hospital(
        random.Random(seed),
        out := _Writer(conn),
        random.Random(f"{seed}:clinical"),
        random.Random(f"{seed}:reporting"),
        random.Random(f"{seed}:growth"),
    )
    hospital.add_reference_tables()
    prev = None
    for seq in range(1, patients + 1):
        prev = hospital.add_patient(seq, prev)
    out.close()  # the second pass reads these rows back
    add_records(conn, out, seed, TODAY)
    counts = out.close()
    for table in metadata.sorted_tables:
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            index.create(conn)
    return counts


def _fast_pragmas(dbapi_conn: Any, _record: Any) -> None:
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


def generate(target: str | os.PathLike | Engine, patients: int = 1000, seed: int = DEMO_SEED) -> dict[str, int]:
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
