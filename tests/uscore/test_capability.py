"""The CapabilityStatement against the US Core 6.1 server statement in the official package: for every
type the server serves, each SHALL interaction, SHALL search parameter and SHALL combination is
listed, as are US Core's revincludes, and the supported profiles are US Core's own. The types come
from our statement, so a type added later is held to the same."""

from __future__ import annotations

import pytest

from support.fhir_client import get_json
from support.profiles import served_types

EXPECTATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"
COMBINATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
# The façade reads the legacy database and never writes to it: US Core's SHALL create (for
# clinical notes) is the one expectation it declines, and says so by not listing it.
READ_ONLY = {"create", "update", "patch", "delete"}


def _shall(items: list[dict]) -> list[dict]:
    return [i for i in items if any(e["url"] == EXPECTATION and e["valueCode"] == "SHALL" for e in i.get("extension", []))]


def _combinations(entry: dict, shall_only: bool) -> list[frozenset]:
    found = []
    for extension in entry.get("extension", []):
        if extension["url"] != COMBINATION:
            continue
        expectation = [e.get("valueCode") for e in extension["extension"] if e["url"] == EXPECTATION]
        if shall_only and expectation != ["SHALL"]:
            continue
        found.append(frozenset(e["valueString"] for e in extension["extension"] if e["url"] == "required"))
    return found


@pytest.fixture(scope="module")
def statements(app, us_core_package):
    client = app.test_client()
    ours = {r["type"]: r for r in get_json(client, "/fhir/metadata")["rest"][0]["resource"]}
    theirs = {r["type"]: r for r in us_core_package.capability["rest"][0]["resource"]}
    served = [t for t in served_types(client) if t in theirs]
    assert len(served) >= 14
    return ours, theirs, served


def test_every_shall_interaction_of_the_types_served(statements):
    ours, theirs, served = statements
    missing = {
        t: sorted({i["code"] for i in _shall(theirs[t].get("interaction", []))} - READ_ONLY - {i["code"] for i in ours[t]["interaction"]})
        for t in served
    }
    assert not any(missing.values()), missing


def test_every_shall_search_parameter_and_combination_of_the_types_served(statements):
    ours, theirs, served = statements
    for resource_type in served:
        declared = {p["name"] for p in ours[resource_type].get("searchParam", [])}
        shall = {p["name"] for p in _shall(theirs[resource_type].get("searchParam", []))}
        assert shall <= declared, (resource_type, sorted(shall - declared))
        listed = set(_combinations(ours[resource_type], shall_only=False))
        for combination in _combinations(theirs[resource_type], shall_only=True):
            assert combination <= declared, (resource_type, sorted(combination - declared))
            assert combination in listed, (resource_type, sorted(combination))


def test_listed_combinations_are_us_cores_and_declared(statements):
    """No combination is listed that US Core does not name, or whose parameters the type lacks."""
    ours, theirs, _ = statements
    for resource_type, entry in ours.items():
        declared = {p["name"] for p in entry.get("searchParam", [])}
        known = set(_combinations(theirs.get(resource_type, {}), shall_only=False))
        for combination in _combinations(entry, shall_only=False):
            assert combination in known and combination <= declared, (resource_type, sorted(combination))


def test_us_core_revincludes_of_the_types_served(statements):
    ours, theirs, served = statements
    for resource_type in served:
        missing = set(theirs[resource_type].get("searchRevInclude", [])) - set(ours[resource_type].get("searchRevInclude", []))
        assert not missing, (resource_type, missing)


def test_supported_profiles_are_us_cores(statements):
    ours, theirs, served = statements
    for resource_type in served:
        supported = ours[resource_type].get("supportedProfile", [])
        assert supported, f"{resource_type} claims no US Core profile"
        assert set(supported) <= set(theirs[resource_type].get("supportedProfile", [])), resource_type
