"""Fixtures of the US Core tests: the official US Core 6.1.0 package, read once per session (the
profile tests skip, saying why, without it), and the demo's busiest patient per type (helpers:
uscore_helpers.py)."""

from __future__ import annotations

import pytest
from uscore_helpers import busiest_for

from support.demo_sql import RECORD_TYPES
from support.profiles import Package, ProfileChecker, us_core_package_path


@pytest.fixture(scope="session")
def busiest(raw_db):
    """Per type, the patient with the most resources of it."""
    return {resource_type: busiest_for(raw_db, resource_type) for resource_type in RECORD_TYPES}


@pytest.fixture(scope="session")
def us_core_package() -> Package:
    path = us_core_package_path()
    if path is None:
        pytest.skip(
            "US Core package not found: needs <repo>/../shared/reference/us-core/hl7.fhir.us.core-6.1.0.tgz or $FHIR_FACADE_US_CORE_PACKAGE"
        )
    return Package(path)


@pytest.fixture(scope="session")
def checker(us_core_package) -> ProfileChecker:
    return ProfileChecker(us_core_package)
