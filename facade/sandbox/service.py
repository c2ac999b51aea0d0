"""The sandbox's FHIR service: read, search and ``$everything`` through the ordinary service,
with the request translated in and the answer de-identified out.

In: pseudonymous ids (``_id``, references, ``Patient/{id}/$everything``) become legacy ids;
date bounds become legacy dates (see :meth:`SandboxService.translate`); the ``_cursor`` is
unsealed. The service then parses, narrows and queries exactly as for the identified API,
over a view (``FhirService.offering``) that knows only the types and search parameters the
policy lets through, so a parameter on a removed element is unknown there: 400 under
``Prefer: handling=strict``, ignored and reported otherwise, like any unknown parameter.

Out: every resource through the policy (:class:`Deidentifier`), links rebuilt on the sandbox's
base with the client's own parameters and a sealed cursor, counts under the small-cell
threshold withheld. Errors name what the client sent, never a legacy id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from facade.access.grant import Access
from facade.core.service import FhirService, Result
from facade.errors import InvalidRequest, NotFound, operation_outcome
from facade.sandbox.deid import Deidentifier
from facade.sandbox.keys import SandboxKey
from facade.sandbox.policy import Policy
from facade.search.compartment import PATIENT_COMPARTMENT_PARAM
from facade.search.params import DateValue, ReferenceValue, SearchClause, SearchParamDef, TokenValue
from facade.search.request import SearchRequest

ID_CLAUSES = ("_id",)


class SandboxService:
    def __init__(
        self,
        service: FhirService,
        policy: Policy,
        key: Callable[[], SandboxKey],
        *,
        small_cell: int,
        today: date | None = None,
        security: Callable[[str], dict] | None = None,
    ):
        """``key``: loads the sandbox key, on first use (building an app writes no key file);
        ``security``: the CapabilityStatement's ``rest.security`` (the authorization server's)."""
        self.policy = policy
        offer = {t: set(rules.search) for t, rules in policy.resources.items() if t in service.types}
        self.inner = service.offering(offer, security=security)
        self.small_cell = small_cell
        self.types = self.inner.types
        self._key = key
        self._today = today
        self._deid: Deidentifier | None = None
        self._lock = threading.Lock()

    @property
    def deid(self) -> Deidentifier:
        """The policy with its key: also what an export applies to each resource it writes."""
        if self._deid is None:
            with self._lock:
                if self._deid is None:
                    self._deid = Deidentifier(self.policy, self._key(), self._today)
        return self._deid

    @property
    def key_id(self) -> str:
        return self.deid.key.key_id

    # -- interactions ---------------------------------------------------------------------

    def read(self, resource_type: str, pseudonym: str, access: Access) -> Result:
        legacy = self._reveal(resource_type, pseudonym)
        try:
            result = self.inner.read(resource_type, legacy, access)
        except NotFound:
            raise NotFound(f"{resource_type}/{pseudonym} is not known") from None
        body = self.deid.resource(result.body)
        if body is None:
            raise NotFound(f"{resource_type}/{pseudonym} is not known")
        return replace(result, body=body)

    def search(self, resource_type: str, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool) -> Result:
        result = self.inner.search(resource_type, self._unseal(params), base_url, access, strict=strict, translate=self.translate)
        return replace(result, body=self._bundle(result.body, base_url, resource_type))

    def everything(self, pseudonym: str, params: Iterable[tuple[str, str]], base_url: str, access: Access, *, strict: bool) -> Result:
        pairs = self._unseal(params)
        if any(name == "_since" for name, _ in pairs):
            raise InvalidRequest("_since is not offered by the sandbox (its dates are not the legacy's)", expression="_since")
        legacy = self._reveal("Patient", pseudonym)
        try:
            result = self.inner.everything(legacy, pairs, base_url, access, strict=strict)
        except NotFound:
            raise NotFound(f"Patient/{pseudonym} is not known") from None
        return replace(result, body=self._bundle(result.body, base_url, f"Patient/{pseudonym}/$everything"))

    def capabilities(self, base_url: str) -> dict:
        statement = self.inner.capabilities(base_url)
        statement["description"] = f"De-identified sandbox: {self.policy.title}. {self.policy.description}"
        statement["implementation"] = {"description": f"fhir-facade sandbox ({self.policy.name})", "url": base_url}
        return statement

    # -- in -------------------------------------------------------------------------------

    def _reveal(self, resource_type: str, pseudonym: str) -> str:
        legacy = self.deid.key.reveal(resource_type, pseudonym) if resource_type in self.types else None
        if legacy is None:
            raise NotFound(f"{resource_type}/{pseudonym} is not known")
        return legacy

    def _unseal(self, params: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        pairs = []
        for name, value in params:
            if name == "_cursor":
                opened = self.deid.key.unseal(value)
                if opened is None:
                    raise InvalidRequest("_cursor is not a paging cursor issued by this server", expression="_cursor")
                value = opened
            pairs.append((name, value))
        return pairs

    def translate(self, request: SearchRequest) -> SearchRequest:
        """The parsed request in legacy terms. Ids: a value that is not one of our pseudonyms (a
        legacy id, a forgery) is dropped, so it matches nothing and excludes nothing. Dates, from
        what the client sees to what the legacy holds:

        - ``dates: year``: only whole years can be asked for (the year shown is the legacy's
          own); a finer date, or a sort on a date, is refused (400): it would reveal what the
          year hides.
        - ``dates: shift``: each patient has their own offset, so a date search or sort needs
          the search to name one patient (``patient=`` / ``subject=``, or ``_id`` on Patient);
          its bounds are then moved by that patient's offset. Without one it is refused (400).
        """
        catalogue = self.inner.catalogues[request.resource_type]
        clauses = tuple(self._clause(request.resource_type, clause, catalogue.get(clause.name)) for clause in request.clauses)
        request = replace(request, clauses=clauses)
        dated = [c for c in clauses if c.type == "date"]
        sorted_by_date = [k.name for k in request.sort if k.name in catalogue and catalogue[k.name].type == "date"]
        if not dated and not sorted_by_date:
            return request
        if self.policy.dates == "year":
            if sorted_by_date:
                raise InvalidRequest(f"_sort={sorted_by_date[0]} is not offered: the sandbox shows dates as years", expression="_sort")
            for clause in dated:
                if not all(_whole_years(v) for v in clause.values if isinstance(v, DateValue)):
                    raise InvalidRequest(
                        f"{clause.name}: the sandbox shows dates as years; search by year (e.g. {clause.name}=ge2020)",
                        expression=clause.name,
                    )
            return request
        patient = self._one_patient(request)
        if patient is None:
            raise InvalidRequest(
                "dates in the sandbox are shifted per patient: a date search or sort needs the search to name one patient",
                expression=(dated[0].name if dated else "_sort"),
            )
        shift = timedelta(days=self.deid.key.offset_days(f"Patient/{patient}", self.policy.shift_days))
        return replace(request, clauses=tuple(_moved(c, shift) if c.type == "date" else c for c in clauses))

    def _clause(self, resource_type: str, clause: SearchClause, definition: SearchParamDef | None) -> SearchClause:
        if clause.name in ID_CLAUSES:
            revealed = (self._id(resource_type, v) if isinstance(v, TokenValue) else v for v in clause.values)
        elif clause.type == "reference" and definition is not None:
            revealed = (self._reference(v, definition) if isinstance(v, ReferenceValue) else v for v in clause.values)
        else:
            return clause
        return replace(clause, values=tuple(v for v in revealed if v is not None))

    def _id(self, resource_type: str, value: TokenValue) -> TokenValue | None:
        legacy = self.deid.key.reveal(resource_type, value.code) if value.code else None
        return TokenValue(value.system, legacy) if legacy is not None else None

    def _reference(self, value: ReferenceValue, definition: SearchParamDef) -> ReferenceValue | None:
        candidates = [value.type] if value.type else [t for t in sorted(self.types) if definition.refers_to(t)]
        for resource_type in candidates:
            legacy = self.deid.key.reveal(resource_type, value.id)
            if legacy is not None:
                return ReferenceValue(resource_type, legacy)
        return None

    def _one_patient(self, request: SearchRequest) -> str | None:
        """The legacy id of the one patient the search is limited to, if it is."""
        names = {"_id"} if request.resource_type == "Patient" else {PATIENT_COMPARTMENT_PARAM.get(request.resource_type), "subject"}
        for clause in request.clauses:
            if clause.name in names and clause.modifier is None and len(clause.values) == 1:
                value = clause.values[0]
                if isinstance(value, TokenValue) and request.resource_type == "Patient" and value.code:
                    return value.code
                if isinstance(value, ReferenceValue) and value.type == "Patient":
                    return value.id
        return None

    # -- out ------------------------------------------------------------------------------

    def _bundle(self, bundle: dict, base_url: str, path: str) -> dict:
        out = {key: value for key, value in bundle.items() if key not in ("link", "entry", "total")}
        warnings: list[dict] = []
        total = bundle.get("total")
        if isinstance(total, int):
            if 0 < total < self.small_cell:
                text = f"Counts below {self.small_cell} are not shown by the sandbox"
                warnings.append(operation_outcome("information", "suppressed", text)["issue"][0])
            else:
                out["total"] = total
        out["link"] = [{"relation": link["relation"], "url": self._link(link["url"], base_url, path)} for link in bundle.get("link", ())]
        entries = []
        for entry in bundle.get("entry", ()):
            if entry.get("search", {}).get("mode") == "outcome":
                entry["resource"]["issue"] = entry["resource"].get("issue", []) + warnings
                warnings = []
                entries.append(entry)
                continue
            resource = self.deid.resource(entry["resource"])
            if resource is not None:
                entries.append(
                    {"fullUrl": f"{base_url}/{resource['resourceType']}/{resource['id']}", "resource": resource, "search": entry["search"]}
                )
        if warnings:
            outcome = operation_outcome("information", "informational", "")
            outcome["issue"] = warnings
            entries.append({"resource": outcome, "search": {"mode": "outcome"}})
        if entries:
            out["entry"] = entries
        return out

    def _link(self, url: str, base_url: str, path: str) -> str:
        """The link on the sandbox's base and path, the client's parameters, the cursor sealed."""
        query = [(k, self.deid.key.seal(v) if k == "_cursor" else v) for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
        return f"{base_url}/{path}?{urlencode(query)}" if query else f"{base_url}/{path}"


def _moved(clause: SearchClause, shift: timedelta) -> SearchClause:
    values = tuple(replace(v, low=v.low - shift, high=v.high - shift) if isinstance(v, DateValue) else v for v in clause.values)
    return replace(clause, values=values)


def _whole_years(value: DateValue) -> bool:
    low, high = value.low, value.high
    return (low.month, low.day, low.hour, low.minute, low.second, low.microsecond) == (1, 1, 0, 0, 0, 0) and high == low.replace(
        year=low.year + 1
    )
