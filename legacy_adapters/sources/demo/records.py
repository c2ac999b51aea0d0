"""Second pass of the demo generator: the records behind the later US Core types.

Clinical notes, care plans, care teams, goals, implants, insurance, pharmacy fills,
orders, next of kin, jobs, OB questions and food-insecurity forms are drawn from the rows the first pass wrote (visits,
problems, prescriptions, procedures), read back per batch of patients in key order,
with their own ``random.Random`` so the first pass's tables stay exactly as they
were for a seed. Memory stays bounded by the batch, whatever the demo's size.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from .schema import (
    care_plan,
    care_team,
    dev_typ_cd,
    emp_hx,
    enc_visit,
    goal_cd,
    hvs_form,
    implant,
    ins_cov,
    note_hdr,
    note_txt,
    note_typ_cd,
    ob_hx,
    ord_cd,
    ord_req,
    panel_spec,
    payer_mstr,
    prob_list,
    proc_log,
    pt_goal,
    pt_master,
    pt_nok,
    rx_fill,
    rx_order,
    staff,
)

BATCH = 500  # patients read back per round trip

# note type, description, LOINC (None: home-grown), report category (also a DiagnosticReport)
NOTE_TYPES = (
    ("PN", "PROGRESS NOTE", "11506-3", None),
    ("HP", "HISTORY & PHYSICAL", "34117-2", None),
    ("DS", "DISCHARGE SUMMARY", "18842-5", None),
    ("EDN", "ED PROVIDER NOTE", "34111-5", None),
    ("CONS", "CONSULT NOTE", "11488-4", None),
    ("RAD", "RADIOLOGY REPORT", "18748-4", "RAD"),
    ("ECG", "ECG INTERPRETATION", "11524-6", "CARD"),
    ("PATH", "SURGICAL PATHOLOGY REPORT", "11526-1", "PATH"),
    ("TEL", "TELEPHONE ENCOUNTER", None, None),
)
GOALS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("A1C7", "HGB A1C < 7.0%", None, "DM2"),
    ("BP130", "BP < 130/80", None, "HTN"),
    ("LDL100", "LDL < 100 MG/DL", None, "HLD"),
    ("WTLOSS", "WEIGHT LOSS 5-10%", "289169006", "OBES"),
    ("SMOKEQ", "QUIT SMOKING", "160618006", None),
    ("ACTV", "EXERCISE 30 MIN 5X/WEEK", None, None),
)
FREE_GOALS = ("WALK TO MAILBOX W/O SOB", "pt wants to get off insulin", "RETURN TO WORK BY SUMMER", "LESS KNEE PAIN ON STAIRS")
DEVICE_TYPES = (
    ("KNEE", "TOTAL KNEE PROSTHESIS", None),
    ("STENT", "CORONARY ARTERY STENT", "705643001"),
    ("PACER", "CARDIAC PACEMAKER", "14106009"),
    ("ICD", "IMPLANTABLE DEFIBRILLATOR", "72506001"),
)
PAYERS = (
    ("MCARE", "MEDICARE PART B", "1", "(800) 633-4227"),
    ("MCAID", "STATE MEDICAID", "2", "(800) 555-0102"),
    ("BCBS", "BLUE CROSS BLUE SHIELD PPO", "5", "(800) 555-0199"),
    ("AETHMO", "AETNA HMO", "51", None),
    ("UHC", "UNITED HEALTHCARE CHOICE", "5", "(800) 555-0144"),
)
ORDERS = (
    ("XRCHEST", "XR CHEST 2 VIEWS", "IMG", "71046", "399208008"),
    ("CTHEAD", "CT HEAD W/O CONTRAST", "IMG", "70450", "408754009"),
    ("ECHO", "ECHOCARDIOGRAM, COMPLETE", "IMG", "93306", "40701008"),
    ("REFCARD", "REFERRAL TO CARDIOLOGY", "REF", None, "183519002"),
    ("REFPT", "REFERRAL TO PHYSICAL THERAPY", "REF", None, "266753000"),
    ("COLSCR", "SCREENING COLONOSCOPY", "SURG", "45378", "73761001"),
    ("DMED", "DIABETES SELF-MGMT EDUCATION", "EDU", "G0108", None),
    ("SMKCS", "TOBACCO CESSATION COUNSELING", "COUN", "99406", "225323000"),
)
ORDERS_BY_PROBLEM = {
    "CORONARY ARTERY DISEASE": ("REFCARD", "ECHO"),
    "DIABETES MELLITUS TYPE 2 W/O COMPLICATIONS": ("DMED",),
    "OSTEOARTHRITIS": ("REFPT",),
    "COPD": ("XRCHEST", "SMKCS"),
}
SPECIMENS = {  # panel → specimen type the lab draws
    "BMP": ("SER", "SERUM", "119364003"),
    "LIPID": ("SER", "SERUM", "119364003"),
    "DMMON": ("SER", "SERUM", "119364003"),
    "LFTTSH": ("SER", "SERUM", "119364003"),
    "CBC": ("BLD", "WHOLE BLOOD", "119297000"),
}
PLANS = {  # problem description → the plan line clinicians typed
    "DIABETES MELLITUS TYPE 2 W/O COMPLICATIONS": "DM2: CONT METFORMIN, A1C Q3MO, ANNUAL EYE & FOOT EXAM",
    "ESSENTIAL HYPERTENSION": "HTN: HOME BP LOG, LOW SALT DIET, RECHECK 4 WKS",
    "HYPERLIPIDEMIA, UNSPECIFIED": "HLD: STATIN, LIPIDS IN 6 MO",
    "ASTHMA, UNCOMPLICATED": "ASTHMA: ALBUTEROL PRN, ACTION PLAN REVIEWED",
    "COPD": "COPD: PFTS, SMOKING CESSATION, PULM REHAB REFERRAL",
    "MAJOR DEPRESSIVE DISORDER": "DEPRESSION: PHQ-9 Q VISIT, BH REFERRAL",
    "HYPOTHYROIDISM": "HYPOTHYROID: LEVOTHYROXINE, TSH 6-8 WKS",
    "GERD W/O ESOPHAGITIS": "GERD: PPI, ELEVATE HOB, AVOID LATE MEALS",
    "CORONARY ARTERY DISEASE": "CAD: ASA/PLAVIX, CARDIOLOGY F/U",
    "CHRONIC KIDNEY DISEASE, STAGE 3": "CKD3: AVOID NSAIDS, BMP Q3MO, NEPHRO F/U",
    "OSTEOARTHRITIS": "OA: APAP PRN, PT & WEIGHT LOSS",
    "OBESITY": "OBESITY: DIET & EXERCISE COUNSELING, DIETITIAN",
}
NOK_RELATIONS = ("SPO", "SPO", "PAR", "CHD", "SIB", "FRND")
NOK_FIRST = ("MARY", "JOHN", "LINDA", "ROBERT", "MARIA", "JAMES", "ANA", "DAVID", "ROSA", "MINH")
CASE_MANAGERS = ("K. OKAFOR RN CM", "T. NGUYEN LCSW", "J. BAKER RN CM")
PATH_FINDINGS = ("BENIGN COLONIC MUCOSA", "HYPERPLASTIC POLYP", "TUBULAR ADENOMA, NO HIGH-GRADE DYSPLASIA")
NOTE_USERS = ("TRANSCR1", "TRANSCR2", "DICTIFC", "EHRNOTES")
# occupation, industry (None: the clerk left it blank), as the registration clerks typed them
JOBS: tuple[tuple[str, str | None], ...] = (
    ("RN", "HOSPITAL"),
    ("TEACHER", "ELEMENTARY SCHOOL"),
    ("TRUCK DRIVER", "LONG DISTANCE TRUCKING"),
    ("CASHIER", "GROCERY STORE"),
    ("CONSTRUCTION LABORER", "CONSTRUCTION"),
    ("ACCOUNTANT", None),
    ("HOME HEALTH AIDE", "HOME HEALTH CARE SERVICES"),
    ("SELF EMPLOYED - ROOFING", "ROOFING CONTRACTORS"),
    ("software developer", "Software publishing"),
    ("FARMER", "CROP PRODUCTION"),
    ("UNEMPLOYED", None),
    ("HOMEMAKER", None),
)
EMPLOYERS = ("SPRINGFIELD GENERAL HOSP", "SPRINGFIELD SCHOOL DIST 186", "ACME MFG INC", "COUNTY MARKET", "SELF")
SOCIAL_USERS = ("REGCLK01", "REGCLK02", "RN0112", "MA0021")


def _parse(text: str | None, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(text, fmt) if text else None
    except ValueError:
        return None


def _v2(text: str) -> str:
    """Plain text → the note store's encoding: HL7 v2 escapes, lines joined by \\.br\\."""
    escaped = text.replace("\\", "\\E\\").replace("&", "\\T\\").replace("|", "\\F\\").replace("^", "\\S\\")
    return escaped.replace("\n", "\\.br\\")


class _Records:
    def __init__(self, conn: Connection, out: Any, seed: int, today: datetime):
        self.conn, self.out, self.today, self.seed = conn, out, today, seed
        self.rng = random.Random(f"{seed}:records")
        self.social_rng = random.Random(f"{seed}:social")  # its own draws: the other tables stay as they were
        self.ids: dict[str, int] = defaultdict(int)
        rows = conn.execute(select(staff.c.dr_cd, staff.c.specialty).order_by(staff.c.dr_cd)).all()
        self.by_specialty: dict[str, list[str]] = defaultdict(list)
        for code, specialty in rows:
            self.by_specialty[specialty].append(code)

    def next_id(self, name: str) -> int:
        self.ids[name] += 1
        return self.ids[name]

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def stamp(self, when: datetime) -> str:
        return min(when + timedelta(minutes=self.rng.randint(5, 3000)), self.today).strftime("%Y%m%d%H%M%S")

    def deleted(self, p: float = 0.005) -> str:
        return "Y" if self.rng.random() < p else "N"

    def reference_tables(self) -> None:
        for code, desc, loinc, cat in NOTE_TYPES:
            self.out.add(note_typ_cd, note_typ=code, typ_desc=desc, loinc_cd=loinc, rpt_cat=cat)
        for code, desc, snomed, _problem in GOALS:
            self.out.add(goal_cd, goal_cd=code, goal_desc=desc, snomed_cd=snomed)
        for code, desc, snomed in DEVICE_TYPES:
            self.out.add(dev_typ_cd, dev_typ=code, dev_desc=desc, snomed_cd=snomed)
        for code, name, sop, phone in PAYERS:
            self.out.add(payer_mstr, payer_cd=code, payer_nm=name, sop_cd=sop, phone=phone)
        for code, desc, cat, cpt, snomed in ORDERS:
            self.out.add(ord_cd, ord_cd=code, ord_desc=desc, ord_cat=cat, cpt_cd=cpt, snomed_cd=snomed)
        for panel, (typ, desc, snomed) in SPECIMENS.items():
            self.out.add(panel_spec, panel_cd=panel, spec_typ=typ, spec_desc=desc, snomed_cd=snomed)

    def batch(self, lo: int, hi: int, patients: list) -> None:
        def grouped(table, *columns, order):
            query = select(table.c.pt_seq, *(table.c[c] for c in columns)).where(table.c.pt_seq.between(lo, hi))
            groups: dict[int, list] = defaultdict(list)
            for row in self.conn.execute(query.order_by(table.c[order])):
                groups[row[0]].append(row[1:])
            return groups

        visits = grouped(enc_visit, "visit_no", "adm_dt", "dsch_dt", "visit_type", "attend_dr", "chief_cmplnt", order="visit_no")
        problems = grouped(prob_list, "prob_desc", "prob_stat", "onset_dt", order="prob_id")
        rxs = grouped(rx_order, "rx_id", "med_cd", "qty", "refills", "order_dt", "stop_dt", "rx_stat", order="rx_id")
        procs = grouped(proc_log, "visit_no", "proc_cd", "perf_dttm", "perf_dr", order="proc_id")
        for seq, dob, sex, last in patients:
            born = _parse(dob, "%Y%m%d")
            self.patient(seq, born, sex, last, visits[seq], problems[seq], rxs[seq], procs[seq])

    def patient(self, seq: int, born: datetime | None, sex: str | None, last: str | None, *rows: list) -> None:
        rng = self.rng
        visits, problems, rxs, procs = rows
        age = (self.today - born).days / 365.25 if born else 40.0
        seen = [(v, when) for v in visits if (when := _parse(v[1], "%Y-%m-%d %H:%M:%S"))]
        descs = [p[0] for p in problems if p[1] != "R"]
        clinic = [v for v, _when in seen if v[3] == "O"]
        # the doctor seen most at the clinic; a tie goes to the one seen first (not to a set's order,
        # which changes from run to run, so one seed gave different care teams)
        pcp = Counter(d[4] for d in clinic).most_common(1)[0][0] if clinic else None
        for visit, when in seen:
            self.notes(seq, visit, when, descs)
            if rng.random() < (0.06 if visit[3] == "O" else 0.3):
                self.order(seq, visit, when, descs)
        for visit_no, proc, perf, doctor in procs:
            when = _parse(perf, "%Y%m%d%H%M")
            if when and proc in ("CXR2V", "ECG12") and rng.random() < 0.9:
                self.report(seq, visit_no, when, doctor, "RAD" if proc == "CXR2V" else "ECG")
            if when and proc == "TKA-R":
                self.implant(seq, visit_no, when, "KNEE")
        if "CORONARY ARTERY DISEASE" in descs and seen and rng.random() < 0.35:
            visit, when = rng.choice(seen)
            self.implant(seq, visit[0], when, rng.choice(("STENT", "STENT", "PACER", "ICD")))
        if descs and clinic and rng.random() < 0.75:
            self.plans(seq, rng.choice(seen), descs, pcp)
        self.goals(seq, seen, descs)
        if seen and rng.random() < 0.8:
            self.team(seq, seen[-1][1], pcp, descs)
        self.coverage(seq, age, seen[0][1] if seen else self.today - timedelta(days=400))
        self.fills(seq, rxs)
        self.next_of_kin(seq, age, last, sex)
        self.social(seq, age, sex, [(visit, when) for visit, when in seen if visit[3] == "O"])

    def notes(self, seq: int, visit: tuple, when: datetime, problems: list[str]) -> None:
        rng = self.rng
        visit_no, _adm, dsch, kind, doctor, complaint = visit
        kinds = {"O": ["PN"] if rng.random() < 0.6 else [], "E": ["EDN"] if rng.random() < 0.85 else [], "I": ["HP"]}[kind]
        if kind == "I" and _parse(dsch, "%Y-%m-%d %H:%M:%S"):
            kinds.append("DS")
        if kind == "O" and rng.random() < 0.04:
            kinds.append("TEL")
        for typ in kinds:
            at = when + timedelta(minutes=rng.randint(20, 600))
            if typ == "DS":
                at = _parse(dsch, "%Y-%m-%d %H:%M:%S") or at
            lines = [f"CC: {complaint or 'NOT RECORDED'}", f"HPI: PT SEEN {at:%m/%d/%Y} FOR {complaint or 'FOLLOW-UP'}."]
            if problems:
                lines.append("PMH: " + "; ".join(problems[:4]))
            lines.append("A&P: " + ("; ".join(PLANS.get(p, p) for p in problems[:2]) if problems else "SYMPTOMATIC CARE, RTC PRN"))
            if rng.random() < 0.2:
                lines.append("pt verbalized understanding & agrees w/ plan")
            self.note(seq, visit_no, typ, doctor, at, "\n".join(lines))

    def report(self, seq: int, visit_no: int | None, when: datetime, doctor: str | None, typ: str) -> None:
        """A reading of an X-ray or ECG, signed by the doctor who did it, else by a reading specialist."""
        reader = doctor or self.rng.choice(self.by_specialty["CARDIOLOGY" if typ == "ECG" else "HOSPITALIST"])
        if typ == "RAD":
            text = "EXAM: XR CHEST PA & LAT\nFINDINGS: LUNGS CLEAR. HEART SIZE NORMAL.\nIMPRESSION: NO ACUTE CARDIOPULMONARY PROCESS."
        else:
            rate = self.rng.randint(55, 100)
            reading = "NORMAL ECG" if rate < 95 else "SINUS TACHYCARDIA"
            text = f"12-LEAD ECG\nRATE {rate}, SINUS RHYTHM\nPR/QRS/QT WNL\nIMPRESSION: {reading}"
        self.note(seq, visit_no, typ, reader, when + timedelta(hours=self.rng.randint(1, 20)), text)

    def note(self, seq: int, visit_no: int | None, typ: str, doctor: str | None, at: datetime, text: str) -> None:
        rng = self.rng
        note_id, at = self.next_id("note"), min(at, self.today)
        titles = {t[0]: t[1] for t in NOTE_TYPES}
        self.out.add(
            note_hdr,
            note_id=note_id,
            note_guid=self.uid(),
            pt_seq=seq,
            visit_no=visit_no,
            note_typ=typ,
            note_title=titles[typ],
            auth_dr=doctor,
            note_dttm=at.strftime("%Y%m%d%H%M%S"),
            sign_stat=rng.choices("SUX", (93, 5, 2))[0],
            del_flg=self.deleted(),
            upd_dttm=self.stamp(at),
            upd_user=rng.choice(NOTE_USERS),
        )
        self.out.add(note_txt, note_id=note_id, txt_fmt="V2E", note_body=_v2(text))

    def pathology(self) -> None:
        """Pathology reports of colonoscopy biopsies, written after every patient's other records and
        from their own random stream, so the rows (and note numbers) before them stay as they were."""
        self.rng = random.Random(f"{self.seed}:pathology")
        last = 0
        columns = (proc_log.c.proc_id, proc_log.c.pt_seq, proc_log.c.visit_no, proc_log.c.perf_dttm, proc_log.c.perf_dr)
        while True:
            query = select(*columns).where(proc_log.c.proc_id > last, proc_log.c.proc_cd == "COLON", proc_log.c.proc_stat == "C")
            rows = self.conn.execute(query.order_by(proc_log.c.proc_id).limit(BATCH)).all()
            if not rows:
                return
            for _id, seq, visit_no, perf, doctor in rows:
                when = _parse(perf, "%Y%m%d%H%M")
                if when and self.rng.random() < 0.45:  # a biopsy was taken
                    # the outside lab's report, filed under the doctor who took the biopsy
                    signer = doctor or self.rng.choice(self.by_specialty["INTERNAL MEDICINE"])
                    gross, finding = self.rng.randint(1, 4), self.rng.choice(PATH_FINDINGS)
                    text = f"SPECIMEN: COLON, BIOPSY\nGROSS: {gross} TAN FRAGMENTS\nDIAGNOSIS: {finding}"
                    self.note(seq, visit_no, "PATH", signer, when + timedelta(days=self.rng.randint(2, 7)), text)
            last = rows[-1][0]

    def order(self, seq: int, visit: tuple, when: datetime, problems: list[str]) -> None:
        rng = self.rng
        pool = [c for p in problems for c in ORDERS_BY_PROBLEM.get(p, ())] or ["XRCHEST", "CTHEAD", "COLSCR"]
        at = min(when + timedelta(minutes=rng.randint(10, 240)), self.today)
        stat = rng.choices("ACX", (25, 68, 7))[0]
        self.out.add(
            ord_req,
            req_id=self.next_id("req"),
            req_guid=self.uid(),
            pt_seq=seq,
            visit_no=visit[0],
            ord_cd=rng.choice(pool),
            ord_dttm=at.strftime("%Y%m%d%H%M%S"),
            ord_dr=visit[4],
            req_stat=stat,
            req_note=rng.choice((None, None, "STAT", "PT TO SCHEDULE", "PRIOR AUTH PENDING")),
            del_flg=self.deleted(),
            upd_dttm=self.stamp(at),
            upd_user=rng.choice(("ORDIFACE", "MA0021", "RN0112")),
        )

    def implant(self, seq: int, visit_no: int | None, when: datetime, typ: str) -> None:
        rng = self.rng
        gtin = f"{rng.randrange(10**13):013d}"
        gtin = "0" + gtin if len(gtin) == 13 else gtin
        expiry = when + timedelta(days=rng.randint(200, 900))
        lot, serial = f"{rng.choice('ABKMX')}{rng.randrange(10**6):06d}", f"{rng.randrange(10**9):09d}"
        scanned = f"(01){gtin}(17){expiry:%y%m%d}(10){lot}(21){serial}"
        udi = scanned if rng.random() > 0.08 else None  # older implants were logged without a UDI
        self.out.add(
            implant,
            imp_id=self.next_id("imp"),
            imp_guid=self.uid(),
            pt_seq=seq,
            visit_no=visit_no,
            dev_typ=typ,
            udi_txt=udi,
            implant_dt=when.strftime("%Y%m%d"),
            imp_stat="R" if rng.random() < 0.05 else "A",
            del_flg=self.deleted(),
            upd_dttm=self.stamp(when),
            upd_user=rng.choice(("ORCIRC1", "CATHLAB2", "HIMCORR")),
        )

    def plans(self, seq: int, visit: tuple, problems: list[str], pcp: str | None) -> None:
        rng = self.rng
        (visit_no, *_rest), when = visit
        lines = [PLANS.get(p, p) for p in problems] + (["RTC 3 MO & PRN"] if rng.random() < 0.7 else [])
        stat = rng.choices("ACX", (80, 15, 5))[0]
        end = when + timedelta(days=365) if stat != "A" else None
        self.out.add(
            care_plan,
            cp_id=self.next_id("cp"),
            cp_guid=self.uid(),
            pt_seq=seq,
            visit_no=visit_no,
            plan_txt="~".join(lines),
            plan_stat=stat,
            start_dt=when.strftime("%Y%m%d"),
            end_dt=min(end, self.today).strftime("%Y%m%d") if end else None,
            auth_dr=pcp or visit[0][4],
            del_flg=self.deleted(),
            upd_dttm=self.stamp(when),
            upd_user=rng.choice(("MA0021", "RN0112", "RN0140")),
        )

    def goals(self, seq: int, seen: list, problems: list[str]) -> None:
        rng = self.rng
        if not seen:
            return
        keys = {"DM2": "DIABETES", "HTN": "HYPERTENSION", "HLD": "HYPERLIPIDEMIA", "OBES": "OBESITY"}
        codes = [g for g in GOALS if g[3] and any(keys[g[3]] in p for p in problems) and rng.random() < 0.7]
        if rng.random() < 0.15:
            codes.append(rng.choice(GOALS[4:]))
        entries = [(g[0], g[1]) for g in codes] + ([(None, rng.choice(FREE_GOALS))] if rng.random() < 0.1 else [])
        for code, text in entries:
            start = rng.choice(seen)[1]
            self.out.add(
                pt_goal,
                goal_id=self.next_id("goal"),
                goal_guid=self.uid(),
                pt_seq=seq,
                goal_cd=code,
                goal_txt=text,
                goal_stat=rng.choices("AMHX", (75, 15, 5, 5))[0],
                start_dt=start.strftime("%Y%m%d"),
                target_dt=(start + timedelta(days=rng.choice((90, 180, 365)))).strftime("%Y%m%d") if rng.random() < 0.8 else None,
                del_flg=self.deleted(),
                upd_dttm=self.stamp(start),
                upd_user=rng.choice(("RN0112", "RN0140", "MA0021")),
            )

    def team(self, seq: int, when: datetime, pcp: str | None, problems: list[str]) -> None:
        rng = self.rng
        specialty = (
            "CARDIOLOGY"
            if "CORONARY ARTERY DISEASE" in problems
            else "NEPHROLOGY"
            if "CHRONIC KIDNEY DISEASE, STAGE 3" in problems
            else "ENDOCRINOLOGY"
            if "HYPOTHYROIDISM" in problems
            else None
        )
        spec = rng.choice(self.by_specialty[specialty]) if specialty and self.by_specialty[specialty] else None
        if not (pcp or spec):
            pcp = rng.choice(self.by_specialty["FAMILY MEDICINE"])
        self.out.add(
            care_team,
            ct_id=self.next_id("ct"),
            ct_guid=self.uid(),
            pt_seq=seq,
            ct_stat="I" if rng.random() < 0.1 else "A",
            pcp_dr=pcp,
            spec_dr=spec,
            cm_nm=rng.choice(CASE_MANAGERS) if len(problems) >= 3 and rng.random() < 0.5 else None,
            del_flg=self.deleted(),
            upd_dttm=self.stamp(when),
            upd_user=rng.choice(("RN0112", "MA0021")),
        )

    def coverage(self, seq: int, age: float, since: datetime) -> None:
        rng = self.rng
        if rng.random() < 0.08:
            return  # self-pay
        payers = ["MCARE"] if age >= 65 else [rng.choice(("MCAID", "BCBS", "AETHMO", "UHC", "BCBS"))]
        if rng.random() < 0.25:
            payers.append(rng.choice([p[0] for p in PAYERS if p[0] not in payers]))
        for rank, payer in enumerate(payers, start=1):
            start = since - timedelta(days=rng.randint(0, 2000))
            ended = rng.random() < 0.12
            rel = "CHD" if age < 18 and payer != "MCAID" else rng.choices(("SEL", "SPO"), (85, 15))[0]
            self.out.add(
                ins_cov,
                cov_id=self.next_id("cov"),
                cov_guid=self.uid(),
                pt_seq=seq,
                cov_seq=rank,
                payer_cd=payer,
                member_no=f"{payer[:2]}{rng.randrange(10**9):09d}" if rng.random() > 0.03 else None,
                group_no=None if payer in ("MCARE", "MCAID") else f"G{rng.randrange(10**6):06d}",
                group_nm=None if payer in ("MCARE", "MCAID") else rng.choice(("CITY OF SPRINGFIELD", "ACME MFG INC", "STATE TEACHERS")),
                plan_nm=rng.choice(("GOLD PPO", "SILVER HMO", "BASIC")) if payer not in ("MCARE", "MCAID") else None,
                subscr_rel=rel,
                eff_dt=start.strftime("%Y%m%d"),
                term_dt=(start + timedelta(days=rng.randint(100, 900))).strftime("%Y%m%d") if ended else None,
                cov_stat="T" if ended else "A",
                del_flg=self.deleted(),
                upd_dttm=self.stamp(start),
                upd_user=rng.choice(("REGCLK01", "REGCLK02", "ELIGIFC")),
            )

    def fills(self, seq: int, rxs: list) -> None:
        """The pharmacy fills an order, then its refills about a supply apart, never past its stop or today."""
        rng = self.rng
        for rx_id, med, qty, refills, ordered, stopped, stat in rxs:
            start, stop = _parse(ordered, "%Y%m%d"), _parse(stopped, "%Y%m%d") or self.today
            if not start or not med or rng.random() < 0.15:
                continue
            supply = 90 if (qty or 0) >= 90 else 30
            at = start + timedelta(hours=rng.randint(2, 72))
            for fill_no in range(min((refills or 0) + 1, 8)):
                if at > min(stop, self.today):
                    break
                last = at + timedelta(days=supply) > min(stop, self.today)
                status = rng.choices("DC", (96, 4))[0] if not (last and stat == "A" and rng.random() < 0.2) else "Q"
                self.out.add(
                    rx_fill,
                    fill_id=self.next_id("fill"),
                    fill_guid=self.uid(),
                    rx_id=rx_id,
                    pt_seq=seq,
                    fill_no=fill_no,
                    fill_dttm=at.strftime("%Y%m%d%H%M") if status == "D" else None,
                    qty=qty,
                    days_sup=supply,
                    fill_stat=status,
                    ph_user=rng.choice(("PHARM02", "PHARM07", "TECH11")),
                    del_flg=self.deleted(0.003),
                    upd_dttm=self.stamp(at),
                )
                at += timedelta(days=supply + rng.randint(-3, 10))

    def next_of_kin(self, seq: int, age: float, last: str | None, sex: str | None) -> None:
        rng = self.rng
        count = rng.choices((0, 1, 2), (25, 60, 15))[0] if age >= 18 else 2
        for i in range(count):
            rel = ("PAR" if age < 18 else rng.choice(NOK_RELATIONS)) if i == 0 or age >= 18 else "PAR"
            family = last if rel in ("PAR", "CHD", "SIB") or rng.random() < 0.7 else rng.choice(("SMITH", "GARCIA", "NGUYEN"))
            self.out.add(
                pt_nok,
                nok_id=self.next_id("nok"),
                nok_guid=self.uid(),
                pt_seq=seq,
                nok_nm=f"{family or 'UNKNOWN'},{rng.choice(NOK_FIRST)}" if rng.random() > 0.03 else None,
                rel_cd=rel if rng.random() > 0.02 else None,
                phone=f"(555) {rng.randint(200, 999)}-{rng.randrange(10000):04d}" if rng.random() < 0.85 else None,
                guar_yn="Y" if (age < 18 and i == 0) or (rel == "SPO" and rng.random() < 0.3) else "N",
                del_flg=self.deleted(),
                upd_dttm=self.stamp(self.today - timedelta(days=rng.randint(1, 2000))),
                upd_user=rng.choice(("REGCLK01", "REGCLK02")),
            )

    def social(self, seq: int, age: float, sex: str | None, clinic: list) -> None:
        """Jobs from the registration screen; at clinic visits, the OB questions (women 15 to 49)
        and the Hunger Vital Sign form."""
        rng = self.social_rng
        if age >= 18 and rng.random() < 0.7:
            jobs: list[tuple[str, str | None]] = [("RETIRED", None)] if age >= 67 and rng.random() < 0.8 else []
            jobs += rng.sample(JOBS, rng.choices((1, 2), (80, 20))[0])
            start = self.today - timedelta(days=int(365 * rng.uniform(0.5, min(age - 17, 30))))
            for i, (occupation, industry) in enumerate(jobs):  # newest first, each before the one above
                if i:
                    start, end = start - timedelta(days=rng.randint(400, 4000)), start - timedelta(days=rng.randint(1, 60))
                else:
                    end = None
                self.out.add(
                    emp_hx,
                    emp_id=self.next_id("emp"),
                    emp_guid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    pt_seq=seq,
                    occ_desc=occupation if rng.random() > 0.02 else "",
                    ind_desc=industry,
                    employer_nm=None if occupation in ("RETIRED", "UNEMPLOYED", "HOMEMAKER") else rng.choice(EMPLOYERS),
                    start_dt=start.strftime("%Y%m%d"),
                    end_dt=end.strftime("%Y%m%d") if end else None,
                    del_flg="Y" if rng.random() < 0.005 else "N",
                    upd_dttm=min(start + timedelta(days=rng.randint(0, 30)), self.today).strftime("%Y%m%d%H%M%S"),
                    upd_user=rng.choice(SOCIAL_USERS[:2]),
                )
        asked = sex == "F" and 15 <= age < 50
        screened = rng.random() < 0.25
        for visit, when in clinic[-6:]:
            at = when + timedelta(minutes=rng.randint(5, 40))
            if asked and rng.random() < 0.4:
                pregnant = rng.choices("NYU", (85, 9, 6))[0]
                self.out.add(
                    ob_hx,
                    ob_id=self.next_id("ob"),
                    ob_guid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    pt_seq=seq,
                    visit_no=visit[0],
                    preg_yn=pregnant,
                    preg_intent=rng.choices("NYU", (65, 15, 20))[0] if pregnant != "Y" and rng.random() < 0.4 else None,
                    rec_dttm=at.strftime("%Y%m%d%H%M%S"),
                    del_flg="Y" if rng.random() < 0.005 else "N",
                    upd_dttm=min(at + timedelta(minutes=rng.randint(5, 600)), self.today).strftime("%Y%m%d%H%M%S"),
                    upd_user=rng.choice(SOCIAL_USERS[2:]),
                )
            if screened and rng.random() < 0.3:
                answers = [rng.choices("NSOR", (75, 15, 7, 3))[0] if rng.random() > 0.03 else None for _ in range(2)]
                self.out.add(
                    hvs_form,
                    hvs_id=self.next_id("hvs"),
                    hvs_guid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    pt_seq=seq,
                    visit_no=visit[0],
                    q1_ans=answers[0],
                    q2_ans=answers[1],
                    form_dttm=at.strftime("%Y%m%d%H%M%S"),
                    del_flg="Y" if rng.random() < 0.005 else "N",
                    upd_dttm=min(at + timedelta(minutes=rng.randint(5, 600)), self.today).strftime("%Y%m%d%H%M%S"),
                    upd_user=rng.choice(SOCIAL_USERS[2:]),
                )


def add_records(conn: Connection, out: Any, seed: int, today: datetime) -> None:
    """Write the later tables from the rows already flushed (``out`` must be flushed before)."""
    records = _Records(conn, out, seed, today)
    records.reference_tables()
    last = 0
    while True:
        query = select(pt_master.c.pt_seq, pt_master.c.dob, pt_master.c.sex_cd, pt_master.c.last_nm)
        patients = conn.execute(query.where(pt_master.c.pt_seq > last).order_by(pt_master.c.pt_seq).limit(BATCH)).all()
        if not patients:
            break
        records.batch(patients[0][0], patients[-1][0], [tuple(p) for p in patients])
        last = patients[-1][0]
    records.pathology()
