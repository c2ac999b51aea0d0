"""A secured server over a small demo database, and a Bulk Data client's moves: kick off, poll,
download. Export files go to a directory of the test run."""

from __future__ import annotations

import pytest

from legacy_adapters.sources.demo.generate import generate
from support.smart_tokens import TokenMint, secured_app

BULK_PATIENTS = 40


@pytest.fixture(scope="session")
def bulk_demo(tmp_path_factory) -> str:
    """A small demo: a whole export of it takes a second or two."""
    path = str(tmp_path_factory.mktemp("bulk-demo") / "demo.sqlite")
    generate(path, patients=BULK_PATIENTS)
    return path


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


def make_app(bulk_demo, tmp_path_factory, mint, **settings):
    root = tmp_path_factory.mktemp("bulk")
    # A checkpoint after every page: the resume tests stop a runner between two given pages.
    # Exports at full speed though the tests poll them (test_pacing.py tests the giving way).
    values = {"bulk_dir": str(root / "files"), "bulk_page_size": 50, "bulk_checkpoint_seconds": 0, "bulk_busy_share": 1, **settings}
    return secured_app(bulk_demo, f"sqlite:///{root}/state.sqlite", mint, **values)


@pytest.fixture(scope="module")
def app(bulk_demo, tmp_path_factory, mint):
    app = make_app(bulk_demo, tmp_path_factory, mint, bulk_jobs_per_client=50)
    yield app
    app.extensions["fhir_facade"].close()


@pytest.fixture()
def client(app):
    return app.test_client()
