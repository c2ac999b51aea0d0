"""The secured server as deployed (auth_mode builtin), trusting a test token mint's key."""

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
