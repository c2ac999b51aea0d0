"""What the sandbox tests share: the endpoint, a test key, the shipped policies, an app as deployed."""

from __future__ import annotations

from flask import Flask

from support.smart_tokens import TokenMint, secured_app

SANDBOX = "http://testserver/sandbox/fhir"
SANDBOX_KEY = "5a" * 32  # a test key; real ones come from the environment or a key file
POLICIES = ("safe-harbor", "limited-data-set")


def sandbox_app(demo_path: str, state_url: str, mint: TokenMint, policy: str, **settings: object) -> Flask:
    app = secured_app(demo_path, state_url, mint, sandbox_policy=policy, sandbox_key=SANDBOX_KEY, **settings)
    app.extensions["fhir_facade"].sandbox_auth.validator.keys = mint.jwks
    return app
