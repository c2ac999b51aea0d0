"""The official US Core 6.1.0 package, read once per session; every test here skips, saying why, without it."""

from __future__ import annotations

import pytest

from support.profiles import Package, ProfileChecker, us_core_package_path


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
