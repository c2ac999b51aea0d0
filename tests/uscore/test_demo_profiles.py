"""Every resource the demo serves, of every type the server lists, meets every US Core profile it
claims, held to the official snapshots (support/profiles.py). The whole database is walked
through the API, page by page, so a legacy corner case that breaks a claim fails here."""

from __future__ import annotations

from collections import Counter

from support.fhir_client import get_json
from support.profiles import claims_and_problems, served_types

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def test_every_claim_of_every_demo_resource_holds(client, checker):
    claimed: Counter = Counter()
    statement = {r["type"]: r for r in get_json(client, "/fhir/metadata")["rest"][0]["resource"]}
    for resource_type in served_types(client):
        claims, problems = claims_and_problems(client, checker, resource_type)
        claimed.update(claims)
        assert not problems, f"{resource_type}: {len(problems)} resources break their claims, e.g. {next(iter(problems.items()))}"
        # what the resources claim, the CapabilityStatement lists as supported (and nothing they never claim)
        assert set(claims) == set(statement[resource_type].get("supportedProfile", [])), resource_type
    # the walk saw claims (a mapping that stopped claiming would pass the loop vacuously)
    assert claimed[US_CORE + "us-core-encounter"] > 1000
    for name in (  # social history and screening, which the CapabilityStatement then lists too
        "us-core-observation-occupation",
        "us-core-observation-pregnancystatus",
        "us-core-observation-pregnancyintent",
        "us-core-observation-screening-assessment",
    ):
        assert claimed[US_CORE + name] > 50, name
        assert US_CORE + name in statement["Observation"]["supportedProfile"]
