"""Over the whole demo, under each shipped policy: no residual identifier in search or
``$everything`` output (``fhir-facade sandbox check``); and the check finds each kind of leak."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from facade.cli import main
from facade.sandbox import deid as deid_module
from facade.sandbox.check import check, check_everything
from facade.sandbox.policy import Rule, load_policy
from facade.sandbox.service import SandboxService
from support.sandbox import SANDBOX_KEY


def test_no_residual_identifier_in_any_search_page_of_the_whole_demo(state):
    report = check(state.service, state.sandbox)
    assert report.findings == []
    assert report.resources > 25_000  # every row of every served type (250 patients: about 30,000)


def test_no_residual_identifier_in_any_patients_everything(state):
    report = check_everything(state.service, state.sandbox)
    assert report.findings == []
    assert report.resources > 25_000


def leaky(state, policy_name: str, change) -> SandboxService:
    policy = load_policy(policy_name)
    return SandboxService(state.service, change(policy), lambda: state.sandbox.deid.key, small_cell=1)


def kinds(report) -> set[tuple[str, str]]:
    return {(f.element, f.kind) for f in report.findings}


def test_names_identifiers_phones_and_streets_are_found(state, monkeypatch, policy):
    def keep_everything(policy):
        patient = policy.resources["Patient"]
        for name, type_name in (("name", "HumanName"), ("identifier", "Identifier"), ("telecom", "ContactPoint"), ("address", "Address")):
            patient.elements[name] = Rule("keep", type_name)
        return policy

    monkeypatch.setattr(deid_module, "IDENTIFYING_TYPES", frozenset())
    found = kinds(check(state.service, leaky(state, policy, keep_everything), limit=100))
    assert {
        ("Patient.name.family", "name"),
        ("Patient.identifier.value", "identifier"),
        ("Patient.telecom.value", "telecom"),
        ("Patient.address.line", "street"),
    } <= found


def test_legacy_dates_and_ids_are_found(state, monkeypatch):
    monkeypatch.setattr(deid_module._Walk, "date", lambda self, value, type_name: value)
    sandbox = leaky(state, "limited-data-set", lambda p: p)
    found = kinds(check(state.service, sandbox, limit=100))
    assert ("Observation.effectiveDateTime", "full date") in found and ("Patient.birthDate", "full date") in found
    monkeypatch.setattr(deid_module.Deidentifier, "pseudonym", lambda self, resource_type, legacy_id: legacy_id)
    monkeypatch.setattr(type(sandbox.deid.key), "reveal", lambda self, resource_type, value: value)
    found = kinds(check(state.service, sandbox, limit=100))
    assert ("Observation.subject.reference", "legacy id") in found


def test_free_text_is_found(state):
    def keep_dosage(policy):
        policy.resources["MedicationRequest"].elements["dosageInstruction"] = Rule("keep", "Dosage")
        return policy

    found = kinds(check(state.service, leaky(state, "safe-harbor", keep_dosage), limit=100))
    assert ("MedicationRequest.dosageInstruction.text", "free text") in found


@pytest.fixture()
def environment(demo_path, tmp_path):
    return {"FHIR_FACADE_DEMO_PATH": demo_path, "FHIR_FACADE_SANDBOX_KEY": SANDBOX_KEY, "XDG_DATA_HOME": str(tmp_path)}


def test_the_command_passes_a_clean_policy_and_fails_a_leaky_one(environment, tmp_path):
    runner = CliRunner()
    clean = runner.invoke(main, ["sandbox", "check", "--limit", "50"], env=environment)
    assert clean.exit_code == 0, clean.output
    assert "no residual identifiers" in clean.output
    text = load_policy_text("safe-harbor").replace("      dosageInstruction: redact\n", "      dosageInstruction: keep\n")
    (tmp_path / "leaky.yaml").write_text(text)
    leaked = runner.invoke(main, ["sandbox", "check", "--limit", "50", "--policy", str(tmp_path / "leaky.yaml")], env=environment)
    assert leaked.exit_code == 1
    assert "RESIDUAL free text: MedicationRequest.dosageInstruction.text" in leaked.output


def load_policy_text(name: str) -> str:
    from facade.sandbox.policy import policy_file

    return policy_file(name).read_text()
