"""The OpenEMR mapping over OpenEMR's real DDL (MariaDB, tests/support/openemr_fixture.py): every
resource of every served type meets every US Core profile it claims."""

from __future__ import annotations

from collections import Counter

import pytest

from support.fhir_client import search_resources
from support.profiles import claims_and_problems, served_types

pytestmark = pytest.mark.mariadb


def test_every_claim_of_every_openemr_resource_holds(openemr_client, checker):
    claimed: Counter = Counter()
    seen = 0
    for resource_type in served_types(openemr_client):
        claims, problems = claims_and_problems(openemr_client, checker, resource_type)
        claimed.update(claims)
        seen += 1
        assert not problems, f"{resource_type}: {len(problems)} resources break their claims, e.g. {next(iter(problems.items()))}"
    assert seen >= 10
    us_core = "http://hl7.org/fhir/us/core/StructureDefinition/"
    for name in (
        "us-core-patient",
        "us-core-observation-lab",
        "us-core-heart-rate",
        "us-core-blood-pressure",
        "us-core-pulse-oximetry",
        "us-core-coverage",
        "us-core-servicerequest",
        "us-core-diagnosticreport-lab",
        "us-core-relatedperson",
        "us-core-practitionerrole",
        "us-core-observation-occupation",
        "us-core-provenance",
    ):
        assert claimed[us_core + name] > 0, name  # the walk saw the claims it holds to their profiles


def test_openemr_ranges_are_read_into_low_and_high(openemr_client):
    glucose = [
        o
        for o in search_resources(openemr_client, "/fhir/Observation?category=laboratory&code=http://loinc.org%7C2345-7")
        if "referenceRange" in o
    ]
    assert glucose
    for observation in glucose:
        unit = observation["valueQuantity"]["unit"] if "valueQuantity" in observation else None
        expected = {"low": {"value": 70}, "high": {"value": 99}, "text": "70-99"}
        if unit:
            expected["low"]["unit"] = expected["high"]["unit"] = unit
        assert observation["referenceRange"] == [expected]
