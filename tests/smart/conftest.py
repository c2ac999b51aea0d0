"""The authorization server: a demo app with its own state database, and a registered public client."""

from __future__ import annotations

import pytest

from support.smart_flow import make_app, make_settings, register


@pytest.fixture(scope="module")
def app(demo_path, tmp_path_factory):
    return make_app(make_settings(demo_path, tmp_path_factory.mktemp("smart")))


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def public(app):
    return register(app, "public")[0]
