"""Fixtures of the US Core type tests (helpers: uscore_helpers.py, profile checks: uscore_profiles.py)."""

from __future__ import annotations

import pytest
from uscore_helpers import busiest_for

from support.demo_sql import RECORD_TYPES


@pytest.fixture(scope="session")
def busiest(raw_db):
    """Per type, the patient with the most resources of it."""
    return {resource_type: busiest_for(raw_db, resource_type) for resource_type in RECORD_TYPES}
