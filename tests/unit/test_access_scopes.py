"""SMART scope grammar (H1, H3, H4, H13) and how a grant becomes restrictions, without HTTP."""

from __future__ import annotations

import pytest

from facade.access.grant import Access, Grant
from facade.access.scopes import parse_scopes
from facade.errors import CannotEnforce, Forbidden
from facade.search.params import SearchParamDef

CATALOGUE = {
    "Observation": {
        "_id": SearchParamDef("_id", "token"),
        "patient": SearchParamDef("patient", "reference", target="Patient"),
        "category": SearchParamDef("category", "token"),
        "code": SearchParamDef("code", "token"),
    },
    "Patient": {"_id": SearchParamDef("_id", "token")},
    "Practitioner": {"_id": SearchParamDef("_id", "token")},
}


def access(scopes: str, patient: str | None = "p1") -> Access:
    return Access(Grant(scopes=parse_scopes(scopes), patient=patient), CATALOGUE.__getitem__)


def text(restrictions) -> list[list[list[str]]]:
    return [[[f"{c.key}={c.raw}" for c in alternative] for alternative in group] for group in restrictions]


@pytest.mark.parametrize(
    ("scope", "letters"),
    [
        ("patient/Observation.read", "rs"),
        ("patient/Observation.write", "cud"),
        ("patient/Observation.*", "cruds"),
        ("user/*.rs", "rs"),
        ("system/Patient.cruds", "cruds"),
        ("patient/Observation.s", "s"),
    ],
)
def test_v1_and_v2_letters(scope, letters):
    [parsed] = parse_scopes(scope).resource
    assert parsed.interactions == letters


@pytest.mark.parametrize(
    "scope",
    [
        "patient/Observation.dus",
        "patient/Observation.sr",
        "patient/Observation.rx",
        "clinic/Observation.rs",
        "patient/Observation.rs?",
        "patient/Observation.read?",
    ],
)
def test_malformed_resource_scopes_grant_nothing(scope):
    scopes = parse_scopes(scope)
    assert scopes.resource == () and scopes.malformed == (scope,)


LAB = "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        (f"patient/Observation.read?{LAB}", f"patient/Observation.rs?{LAB}"),
        (f"patient/Observation.*?{LAB}", f"patient/Observation.cruds?{LAB}"),
        (f"user/Observation.write?{LAB}", f"user/Observation.cud?{LAB}"),
    ],
)
def test_a_v1_scope_with_a_filter_grants_what_its_v2_form_grants(v1, v2):
    [old], [new] = parse_scopes(v1).resource, parse_scopes(v2).resource
    assert (old.context, old.resource_type, old.interactions, old.query) == (new.context, new.resource_type, new.interactions, new.query)
    for interaction in ("read", "search"):
        try:
            expected = text(access(v2).restrictions("Observation", interaction))
        except Forbidden:
            with pytest.raises(Forbidden):
                access(v1).restrictions("Observation", interaction)
            continue
        assert text(access(v1).restrictions("Observation", interaction)) == expected


@pytest.mark.parametrize(
    "scope",
    [
        "patient/Observation.rs",
        "patient/Observation.read",
        f"patient/Observation.read?{LAB}",
        f"patient/Observation.*?{LAB}",
        f"patient/Observation.write?{LAB}",
        "user/*.cruds",
        "system/Patient.r",
        "patient/O.rs",
        "patient/Observation.dus",
        "patient/Observation.rs?",
        "clinic/Patient.rs",
        "patient/Observation.rx",
        "user/*.*",
        "openid",
        "launch/patient",
    ],
)
def test_the_consent_page_and_the_resource_server_read_a_scope_alike(scope):
    """One grammar: a scope the authorization server accepts as a resource scope grants at the
    resource server, and one it refuses grants nothing there."""
    from facade.smart import consent

    accepted = consent.is_valid(scope) and scope not in consent.CONTEXT_SCOPES
    parsed = parse_scopes(scope)
    assert bool(parsed.resource) == accepted, (scope, parsed)
    if not accepted and scope not in consent.CONTEXT_SCOPES:
        assert not consent.is_valid(scope)


def test_context_scopes_are_kept_apart():
    scopes = parse_scopes("openid fhirUser launch/patient offline_access patient/Patient.r")
    assert scopes.context == ("openid", "fhirUser", "launch/patient", "offline_access")
    assert [s.text for s in scopes.resource] == ["patient/Patient.r"]


def test_rs_equals_r_plus_s():
    # H4: scope equivalence.
    assert text(access("patient/Observation.rs").restrictions("Observation", "search")) == text(
        access("patient/Observation.r patient/Observation.s").restrictions("Observation", "search")
    )


def test_patient_scope_is_the_compartment():
    assert text(access("patient/*.rs").restrictions("Observation", "read")) == [[["patient=Patient/p1"]]]
    assert text(access("patient/*.rs").restrictions("Patient", "search")) == [[["_id=p1"]]]


def test_user_and_system_scopes_see_every_row():
    assert access("user/Observation.rs").restrictions("Observation", "search") == ()
    assert access("system/*.rs", patient=None).restrictions("Patient", "read") == ()


def test_granular_scopes_or_together_with_the_compartment_hoisted():
    grant = access("patient/Observation.rs?category=laboratory patient/Observation.rs?category=vital-signs&code=1")
    assert text(grant.restrictions("Observation", "search")) == [
        [["patient=Patient/p1"]],
        [["category=laboratory"], ["category=vital-signs", "code=1"]],
    ]
    # A resource-level scope for the same type makes the OR everything: no filter at all remains
    # beyond the compartment.
    wider = access("patient/Observation.rs?category=laboratory patient/Observation.rs")
    assert text(wider.restrictions("Observation", "search")) == [[["patient=Patient/p1"]]]


def test_wildcard_patient_scopes_do_not_reach_non_compartment_types():
    with pytest.raises(Forbidden):
        access("patient/*.rs").restrictions("Practitioner", "read")
    # Named explicitly, shared reference data is granted (it belongs to no patient).
    assert access("patient/Practitioner.rs").restrictions("Practitioner", "read") == ()


def test_missing_interaction_or_type_is_forbidden():
    with pytest.raises(Forbidden):
        access("patient/Observation.r").restrictions("Observation", "search")
    with pytest.raises(Forbidden):
        access("patient/Observation.rs").restrictions("Patient", "read")
    with pytest.raises(Forbidden):
        access("openid fhirUser").restrictions("Patient", "read")


def test_unenforceable_is_refused_not_widened():
    for scope, patient in [
        ("patient/Observation.rs?nope=1", "p1"),
        ("patient/Observation.rs?_sort=date", "p1"),
        ("patient/Observation.rs?category=", "p1"),
        ("patient/Observation.rs", None),
        ("patient/Observation.rs?category:text=lab", "p1"),
    ]:
        with pytest.raises(CannotEnforce):
            access(scope, patient).restrictions("Observation", "search")
