"""The resource sources a scaffold drafts: one per table that looks like a resource (see scaffold.py).

Each draft fills the elements FHIR requires of its type and the ones the columns suggest
(identifiers, names, a code, a date, a value), links the patient, and binds the searches a
client starts with (patient, date, code). Guesses are marked TODO in the YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PATIENT_LINK = re.compile(r"^(person_id|patient_id|pt_seq|pt_id|pat_id|pid|patient_seq|pat_seq)$")
GUID = re.compile(r"(guid|uuid)$")


@dataclass
class Coded:
    column: str
    code_table: str | None


@dataclass
class Draft:
    resource_type: str
    source: dict
    params: dict = field(default_factory=dict)
    coded: list[Coded] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)


def resource_drafts(found: Any, names: list[tuple[str, str]]) -> list[Draft]:
    typed = []
    for table in found.tables.values():
        if table.code_table is not None or table.rows == 0:  # an empty table shows nothing to map yet
            continue
        table.resource = next((kind for kind, pattern in names if re.search(pattern, table.name.lower())), None)
        if table.resource:
            typed.append(table)
    patients = sorted((t for t in typed if t.resource == "Patient"), key=lambda t: -t.rows)
    patient = patients[0] if patients else None
    drafts = [_Drafter(found, table, patient).draft() for table in typed if table.resource != "Patient" or table is patient]
    counts: dict[str, int] = {}
    for draft in drafts:
        counts[draft.resource_type] = counts.get(draft.resource_type, 0) + 1
    for draft in drafts:  # ids of several sources of one type must not meet: a prefix each
        if counts[draft.resource_type] > 1:
            draft.source["id"] = f"{draft.source['table']}-{draft.source['id']}"
    return drafts


class _Drafter:
    def __init__(self, found: Any, table: Any, patient: Any):
        self.found, self.table, self.patient = found, table, patient
        self.alias = _alias(table.name)
        self.joins: list[dict] = []
        self.draft_ = Draft(table.resource, {})

    # -- columns -------------------------------------------------------------------------------
    def ref(self, column: str) -> str:
        return f"{self.alias}.{column}"

    def find(self, pattern: str, kinds: tuple[str, ...] = ()) -> str | None:
        for name, column in self.table.columns.items():
            if re.search(pattern, name.lower()) and (not kinds or column.kind in kinds):
                return name
        return None

    def id_column(self) -> str:
        guid = next((c for c in self.table.columns if GUID.search(c.lower())), None)
        return guid or (self.table.key[0] if self.table.key else next(iter(self.table.columns)))

    def patient_reference(self) -> dict | None:
        patient = self.patient
        if patient is None or self.table is patient:
            return None
        patient_id = _Drafter(self.found, patient, patient).id_column()
        patient_key = patient.key[0] if patient.key else patient_id  # no primary key: the column its ids come from
        link = next((cols[0] for cols, target, _ in self.table.foreign if target == patient.name), None)
        link = link or (patient_key if patient_key in self.table.columns else None)
        link = link or next((c for c in self.table.columns if PATIENT_LINK.match(c.lower())), None)
        if link is None:
            return None
        self.draft_.params["patient"] = {"type": "reference", "target": "Patient", "description": "The patient"}
        self.bind("patient", {"column": self.ref(link)}, link)
        if patient_id == patient_key:
            return {"reference": {"template": f"Patient/{{{self.ref(link)}}}"}}
        alias = "p" if self.alias != "p" else "pt"
        self.joins.append({"table": patient.name, "alias": alias, "match": {self.ref(link): f"{alias}.{patient_key}"}})
        self.draft_.source["search"]["patient"] = {"column": f"{alias}.{patient_id}"}
        return {"reference": {"template": f"Patient/{{{alias}.{patient_id}}}"}}

    def date_value(self, column: str, element: str) -> dict:
        how = self.table.columns[column].date
        spec: dict[str, Any] = {"column": self.ref(column)}
        if how not in ("typed", "epoch"):
            spec["date"] = how
        timed = how == "epoch" or (how == "typed" and self.table.columns[column].kind == "datetime") or "%H" in str(how)
        if element == "date" or not timed:
            spec["as"] = "date"
        elif element == "instant":
            spec["as"] = "instant"
        elif how in ("typed", "epoch"):
            spec["as"] = "dateTime"
        return spec

    def date_binding(self, column: str) -> dict:
        how = self.table.columns[column].date
        return {"column": self.ref(column)} if how in ("typed", "epoch") else {"column": self.ref(column), "date": how}

    def best_date(self) -> str | None:
        dated = [c for c, col in self.table.columns.items() if col.date and not re.search(r"upd|modif|creat|_end|stop", c.lower())]
        preferred = [c for c in dated if re.search(r"start|collect|taken|perf|onset|adm|order|date|_dt", c.lower())]
        return (preferred or dated or [None])[0]

    def coded(self) -> tuple[Any, dict] | None:
        """(value expression, search binding) of the table's code column, looked up where a code table knows it."""
        skip = {*self.table.key, self.id_column()}
        for name in self.table.columns:
            if name in skip or PATIENT_LINK.match(name.lower()) or not re.search(r"(_cd|code|_concept_id)$", name.lower()):
                continue
            table_name = self._code_table_for(name)
            if table_name:
                spec = self.found.code_tables[table_name]
                names = [table_name] + [
                    n
                    for n, other in self.found.code_tables.items()
                    if n != table_name and (other["table"], other["key"]) == (spec["table"], spec["key"])
                ]
                for found_name in names:
                    self.draft_.coded.append(Coded(name, found_name))
                codings = [{"column": self.ref(name), "lookup": n} for n in names]  # the local code, then standard ones the table holds
                return {"first": codings} if len(codings) == 1 else codings, {"codings": codings}
            self.draft_.coded.append(Coded(name, None))
            system = f"urn:local:{self.table.name}:{name}"  # TODO: the system these codes belong to
            return {"system": system, "code": {"column": self.ref(name)}}, {"system": system, "column": self.ref(name)}
        return None

    def _code_table_for(self, column: str) -> str | None:
        for cols, target, target_cols in self.table.foreign:
            if cols == [column]:
                return next(
                    (n for n, spec in self.found.code_tables.items() if spec["table"] == target and spec["key"] == target_cols[0]), None
                )
        for name, spec in self.found.code_tables.items():
            if spec["key"] == column or (column.endswith("_concept_id") and spec["table"] == "concept"):
                return name
        return None

    @staticmethod
    def codeable(value: Any) -> dict:
        if isinstance(value, list):
            return {"coding": value}
        return {"coding": value["first"]} if "first" in value else {"coding": [value]}

    def bind(self, param: str, binding: dict, column: str | None) -> None:
        self.draft_.source.setdefault("search", {})[param] = binding
        if column and column not in self.table.leading:
            self.draft_.indexes.append(f"CREATE INDEX ix_{self.table.name}_{column} ON {self.table.name} ({column})")

    # -- the draft ------------------------------------------------------------------------------
    def draft(self) -> Draft:
        table, kind = self.table, self.table.resource
        source = self.draft_.source
        source.update({"name": table.name, "table": table.name, "alias": self.alias})
        source["id"] = f"{{{self.ref(self.id_column())}}}"
        source["resource"] = {}
        source["search"] = {}
        flag = self.find(r"^(del_flg|deleted|is_deleted|voided|void_flg|del_ind)$")
        if flag:
            source["# where"] = f'TODO soft deletes? where: [{{column: {self.ref(flag)}, not_equals: "Y"}}]'
        builder = getattr(self, f"_{kind[0].lower()}{kind[1:]}", self._clinical)
        builder(source["resource"])
        order = ["name", "table", "alias", "joins", "# where", "id", "resource", "search", "# default_sort"]
        if self.joins:
            source["joins"] = self.joins
        self.draft_.source = {key: source[key] for key in order if key in source}  # in the order of the shipped mappings
        return self.draft_

    def _patient(self, resource: dict) -> None:
        mrn = self.find(r"mrn|source_value|pubpid|record_no|chart")
        if mrn:
            system = f"urn:local:{self.table.name}:{mrn}"  # TODO: your medical record number system
            resource["identifier"] = [{"system": system, "value": {"column": self.ref(mrn)}}]
            self.draft_.params["identifier"] = {"type": "token", "description": "The medical record number"}
            self.bind("identifier", {"system": system, "column": self.ref(mrn)}, mrn)
        family, given = self.find(r"(last|family|lname|surname)"), self.find(r"(first|given|fname)")
        if family:
            resource["name"] = [{"family": {"column": self.ref(family)}, **({"given": [{"column": self.ref(given)}]} if given else {})}]
            self.draft_.params["family"] = {"type": "string", "sortable": True, "description": "Start of the family name"}
            self.bind("family", {"column": self.ref(family)}, family)
        sex = self.find(r"^(sex|gender)")
        if sex:
            concept = self.table.columns[sex].kind == "integer"
            genders = {8507: "male", 8532: "female"} if concept else {"M": "male", "F": "female"}  # TODO: the legacy values
            resource["gender"] = {"column": self.ref(sex), "map": genders, "otherwise": "unknown", "default": "unknown"}
        parts = [self.find(rf"^{p}_of_birth$") for p in ("year", "month", "day")]
        born = self.find(r"(dob|birth_?date|birth_datetime|date_of_birth)")
        if parts[0]:
            resource["birthDate"] = {"parts": {k: self.ref(c) for k, c in zip(("year", "month", "day"), parts) if c}}
        elif born and self.table.columns[born].date:
            resource["birthDate"] = self.date_value(born, "date")
            self.draft_.params["birthdate"] = {"type": "date", "sortable": True, "description": "Date of birth"}
            self.bind("birthdate", self.date_binding(born), born)

    def _practitioner(self, resource: dict) -> None:
        family, given = self.find(r"(last|family|lname|surname)"), self.find(r"(first|given|fname)")
        name = self.find(r"name|_nm$")
        if family:
            resource["name"] = [{"family": {"column": self.ref(family)}, **({"given": [{"column": self.ref(given)}]} if given else {})}]
        elif name:
            resource["name"] = [{"text": {"column": self.ref(name)}}]
        npi = self.find(r"npi")
        if npi:
            resource["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi", "value": {"column": self.ref(npi)}}]
        if not resource:
            resource["active"] = True

    def _organization(self, resource: dict) -> None:
        name = self.find(r"name|_nm$|desc")
        resource["name"] = {"column": self.ref(name)} if name else "TODO"
        if name:
            self.draft_.params["name"] = {"type": "string", "description": "Start of the name"}
            self.bind("name", {"column": self.ref(name)}, name)

    _location = _organization

    def _clinical(self, resource: dict) -> None:
        kind = self.table.resource
        subject = self.patient_reference()
        coded = self.coded()
        date = self.best_date()
        required: dict[str, Any] = {  # type: ignore[assignment]
            "Observation": {"status": "final", "code": None},
            "Condition": {"code": None},
            "MedicationRequest": {"status": "unknown", "intent": "order", "medicationCodeableConcept": None},
            "Procedure": {"status": "completed"},
            "AllergyIntolerance": {"code": None},
            "Immunization": {"status": "completed", "vaccineCode": None},
            "Encounter": {"status": "finished", "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
        }[kind]
        for element, value in required.items():
            resource[element] = value if value is not None else (self.codeable(coded[0]) if coded else {"text": "TODO"})
        if kind == "Procedure" and coded:
            resource["code"] = self.codeable(coded[0])
        if subject:
            resource["patient" if kind in ("AllergyIntolerance", "Immunization") else "subject"] = subject
        element = {
            "Observation": "effectiveDateTime",
            "Condition": "onsetDateTime",
            "MedicationRequest": "authoredOn",
            "Procedure": "performedDateTime",
            "AllergyIntolerance": "recordedDate",
            "Immunization": "occurrenceDateTime",
            "Encounter": "period",
        }[kind]
        if date:
            value, binding = self.date_value(date, "dateTime"), self.date_binding(date)
            timed = date.replace("_date", "_datetime") if date.endswith("_date") else ""
            if timed in self.table.columns and self.table.columns[timed].date:  # the datetime where there is one, else the date
                value = {"first": [self.date_value(timed, "dateTime"), value]}
                binding = {"first": [self.date_binding(timed), binding]}
            resource[element] = {"start": value} if element == "period" else value
            self.draft_.params["date"] = {"type": "date", "sortable": True, "description": "When it happened"}
            self.bind("date", binding, date)
            self.draft_.source["# default_sort"] = "TODO newest first? default_sort: [-date] (under the resource type)"
        elif kind == "Immunization":
            resource["occurrenceString"] = "unknown"
        number = self.find(r"(value|result|val|_num|number)", ("number", "integer"))
        if kind == "Observation" and number:
            resource["valueQuantity"] = {"value": {"column": self.ref(number), "type": "decimal"}}
        if coded:
            self.draft_.params["code"] = {"type": "token", "description": "The code"}
            column = (coded[1].get("column") or coded[1]["codings"][0]["column"]).partition(".")[2]
            self.bind("code", coded[1], column)


def _alias(name: str) -> str:
    letters = "".join(part[0] for part in re.split(r"[_\W]+", name.lower()) if part)
    return letters[:3] or "t"
