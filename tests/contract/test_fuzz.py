"""The OpenAPI document is strict enough to fuzz: schemathesis generates requests from it (with a
token) and every answer must be no server error and match the document — status code, content
type, headers. A bounded run (about a minute on two cores): each operation gets a few dozen cases."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from support.smart_tokens import TokenMint, secured_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import checks  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

MINT = TokenMint()
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 8}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.ignored_auth,  # the same request without the token must be refused
    checks.unsupported_method,  # an undocumented method on a documented path: 405 (no route ambiguity)
    checks.allow_header_conformance,
]
# Bodies that break the document (negative mode: the POSTs, where the 500s of the review were) must
# still never be a server error or an undocumented answer.
NEGATIVE_CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance]
# Not run: positive_data_acceptance. A value can fit its schema and still be refused for what it
# means: a _cursor the server did not issue, a date that does not exist (400 is the FHIR answer).


@pytest.fixture(scope="module")
def fuzzed_app(demo_path, tmp_path_factory):
    return secured_app(demo_path, "sqlite:///" + str(tmp_path_factory.mktemp("fuzz") / "state.sqlite"), MINT)


def test_the_api_keeps_its_contract(fuzzed_app):
    schema = schemathesis.openapi.from_wsgi("/fhir/openapi.json", fuzzed_app)
    token = MINT.token("user/*.rs user/AuditEvent.rs", lifetime=3600)
    failures = []
    for mode, checked in ((GenerationMode.POSITIVE, CHECKS), (GenerationMode.NEGATIVE, NEGATIVE_CHECKS)):
        for result in schema.get_all_operations():
            operation = result.ok()
            if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
                continue
            try:
                _fuzz(operation, mode, checked, token)
            except Unsatisfiable:  # nothing in this operation's document can be made invalid
                continue
            except BaseException as failure:  # an exception group; collected, so one run reports every operation's
                if isinstance(failure, KeyboardInterrupt):
                    raise
                failures.append(f"{mode.value} {operation.label}: {str(failure)[:1500]}")
    assert not failures, "\n\n".join(failures)


def _fuzz(operation, mode: GenerationMode, checked: list, token: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
    def run(case):
        # identity: the checks read the body as a client library would; the WSGI client does not unzip
        case.call_and_validate(headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}, checks=checked)

    run()
