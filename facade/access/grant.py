"""What one access token may see, as search clauses the SQL compiler ANDs into every query.

A :class:`Grant` is who asked and what was granted (from the token's claims).
:class:`Access` answers, per resource type and interaction, "allowed?" and "which
rows?": the rows come back as *restrictions* — groups of alternatives of search
clauses, the same typed clauses a client's own query parses to — so the legacy
database filters them, before paging and counting. Nothing is filtered after SQL.

Per type and interaction the scopes that cover it are ORed:

- ``user/`` and ``system/`` scopes: every row (the legacy system has no per-user
  policy to apply), narrowed by the scope's own filter when it is granular;
- ``patient/`` scopes: the token's patient's compartment (facade/compartment.py),
  narrowed by the scope's filter. A type outside the Patient compartment (shared
  reference data such as Practitioner or Medication) is reachable only when a
  ``patient/`` scope names it explicitly; ``patient/*`` does not reach it.

A filter the mapping cannot evaluate, or a ``patient/`` scope on a token with no
patient, is refused with 400 (CannotEnforce) rather than widened or guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from facade.access.scopes import ScopeSet, parse_scopes
from facade.errors import CannotEnforce, FacadeError, Forbidden
from facade.search import control
from facade.search.compartment import in_patient_compartment, patient_compartment_clause
from facade.search.params import SearchClause, SearchParamDef
from facade.search.parser import parse_search
from facade.search.request import SearchRequest

Group = tuple[tuple[SearchClause, ...], ...]
Restrictions = tuple[Group, ...]
Catalogue = Callable[[str], Mapping[str, SearchParamDef]]

# Interaction → SMART v2 letter (SMART 2.x "scopes for requesting FHIR resources").
LETTERS = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search": "s",
    "history-type": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}
# Records about the server itself, across every patient (the audit trail): only a user/ or
# system/ scope that names the type, without a filter, reaches them; `*` and patient/ scopes never do.
SERVER_RECORDS = frozenset({"AuditEvent"})


@dataclass(frozen=True)
class Grant:
    """A validated token's authorization-relevant claims."""

    scopes: ScopeSet
    client_id: str | None = None
    subject: str | None = None
    fhir_user: str | None = None
    patient: str | None = None
    encounter: str | None = None
    token_id: str | None = None  # jti
    expires_at: int | None = None
    purpose: str | None = None  # why the client reads (sandbox clients declare it; audited)

    @classmethod
    def from_claims(cls, claims: Mapping) -> Grant:
        def text(name: str) -> str | None:
            value = claims.get(name)
            return value if isinstance(value, str) and value else None

        expires = claims.get("exp")
        return cls(
            scopes=parse_scopes(text("scope") or ""),
            client_id=text("client_id") or text("azp"),
            subject=text("sub"),
            fhir_user=text("fhirUser"),
            patient=text("patient"),
            encounter=text("encounter"),
            token_id=text("jti"),
            expires_at=expires if isinstance(expires, int) else None,
            purpose=text("purpose"),
        )


class Access:
    """One token's view of the server. Cheap to query: answers are memoised per type and interaction."""

    def __init__(self, grant: Grant | None, catalogue: Catalogue):
        self.grant = grant  # None: access control is off (auth_mode = "off")
        self._catalogue = catalogue
        self._answers: dict[tuple[str, str], Restrictions | FacadeError] = {}

    @classmethod
    def unrestricted(cls) -> Access:
        return cls(None, lambda _type: {})

    @property
    def enforced(self) -> bool:
        return self.grant is not None

    def restrictions(self, resource_type: str, interaction: str) -> Restrictions:
        """The clause groups every query for this type and interaction must satisfy;
        ``()`` means all rows. Raises Forbidden or CannotEnforce."""
        if self.grant is None:
            return ()
        key = (resource_type, interaction)
        answer = self._answers.get(key)
        if answer is None:
            try:
                answer = self._compute(resource_type, interaction)
            except FacadeError as error:
                answer = error
            self._answers[key] = answer
        if isinstance(answer, FacadeError):
            raise answer.with_traceback(None)  # memoised: do not let tracebacks pile up on it
        return answer

    def narrow(self, request: SearchRequest, interaction: str = "search") -> SearchRequest:
        """``request`` as this token may run it: its restrictions replace whatever the request
        carried. Raises Forbidden or CannotEnforce."""
        restrictions = self.restrictions(request.resource_type, interaction)
        return request if request.restrictions == restrictions else replace(request, restrictions=restrictions)

    def _compute(self, resource_type: str, interaction: str) -> Restrictions:
        assert self.grant is not None
        letter = LETTERS[interaction]
        scopes = [s for s in self.grant.scopes.resource if s.covers(resource_type, letter)]
        if resource_type in SERVER_RECORDS:  # only a scope that names them: */ scopes mean clinical data
            if any(s.context in ("user", "system") and s.query is None and s.resource_type == resource_type for s in scopes):
                return ()
            raise Forbidden(
                f"{interaction} on {resource_type} needs a user/{resource_type}.{letter} or system/{resource_type}.{letter} scope",
                scope=f"system/{resource_type}.{letter}",
            )
        alternatives: list[tuple[SearchClause, ...]] = []
        refusal: CannotEnforce | None = None
        for scope in scopes:
            clauses: list[SearchClause] = []
            if scope.context == "patient":
                if in_patient_compartment(resource_type):
                    if not self.grant.patient:
                        refusal = refusal or CannotEnforce(f"Scope '{scope.text}' needs a patient context, and the access token has none")
                        continue
                    clauses.append(patient_compartment_clause(resource_type, self.grant.patient))
                elif scope.resource_type == "*":
                    continue  # patient/* means the patient's data, not shared reference data
            if scope.query is not None:
                try:
                    clauses += scope_filter(resource_type, scope.query, self._catalogue(resource_type))
                except CannotEnforce as error:
                    refusal = refusal or CannotEnforce(f"Scope '{scope.text}': {error.diagnostics}")
                    continue
            if not clauses:
                return ()  # one scope grants every row: the OR of all of them does too
            alternatives.append(tuple(clauses))
        if refusal is not None:
            raise refusal
        if not alternatives:
            raise Forbidden(
                f"The access token's scopes do not allow {interaction} on {resource_type}", scope=f"patient/{resource_type}.{letter}"
            )
        return hoist_common(alternatives)


def scope_filter(resource_type: str, query: str, catalogue: Mapping[str, SearchParamDef]) -> list[SearchClause]:
    """A granular scope's ``?param=value&…`` as clauses, parsed by the search parser itself."""
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise CannotEnforce(f"'{query}' is not a search filter")
    for key, value in pairs:
        name = key.partition(":")[0]
        if name in control.NAMES or value == "":
            raise CannotEnforce(f"'{key}={value}' is not a filter this server can enforce")
    try:
        request = parse_search(resource_type, pairs, catalogue, strict=True)
    except FacadeError as error:
        raise CannotEnforce(f"cannot be enforced on {resource_type}: {error.diagnostics}") from None
    return list(request.clauses)


def hoist_common(alternatives: list[tuple[SearchClause, ...]]) -> Restrictions:
    """``(P ∧ A) ∨ (P ∧ B)`` → ``P ∧ (A ∨ B)``: the compartment clause becomes its own group,
    which keeps the SQL simple (and its index usable) and the explanation readable."""
    unique = list(dict.fromkeys(alternatives))
    common = [c for c in unique[0] if all(c in alternative for alternative in unique[1:])]
    groups: list[Group] = [((clause,),) for clause in common]
    rest = [tuple(c for c in alternative if c not in common) for alternative in unique]
    if rest and all(rest):
        groups.append(tuple(dict.fromkeys(rest)))
    return tuple(groups)
