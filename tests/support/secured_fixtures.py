"""Fixtures for tests of the secured server: a token mint and an app that trusts it.

Import them into a test module (``from support.secured_fixtures import app, client, mint``);
they replace conftest's open (``auth_mode="off"``) app and client there.
"""

from __future__ import annotations

import pytest

from support.smart_tokens import TokenMint, secured_app


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


@pytest.fixture(scope="module")
def app(demo_path, state_url, mint):
    return secured_app(demo_path, state_url, mint)


@pytest.fixture()
def client(app):
    return app.test_client()
