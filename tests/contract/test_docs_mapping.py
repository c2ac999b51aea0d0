"""The mapping guide (docs/mapping) and the README's mapping section run as written: their SQL builds
the example database, their mappings load and check, their commands run, their searches answer
what the page says, and excerpts of shipped mappings are what those files hold."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from facade.app import create_app
from facade.cli import main
from facade.config import Settings
from legacy_adapters.engines import create_legacy_engine, sqlite_url
from legacy_adapters.mapping.reference import reference_markdown

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "mapping"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text(encoding="utf-8")) if lang == language]


def commands(page: Path) -> list[str]:
    lines = []
    for body in blocks(page, "sh"):
        lines += [line.strip() for line in body.replace("\\\n", " ").splitlines() if line.strip()]
    return lines


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Path:
    """The example database and mapping of writing.md, in a directory of their own."""
    folder = tmp_path_factory.mktemp("clinic")
    page = DOCS / "writing.md"
    engine = sa.create_engine(f"sqlite:///{folder / 'clinic.sqlite'}")
    raw = engine.raw_connection()
    raw.driver_connection.executescript(blocks(page, "sql")[0])
    raw.close()
    engine.dispose()
    (folder / "clinic.yaml").write_text(blocks(page, "yaml")[0], encoding="utf-8")
    return folder


def _run(folder: Path, line: str, monkeypatch) -> str:
    """A ``fhir-facade`` command of the docs, run in ``folder``."""
    monkeypatch.chdir(folder)
    run = CliRunner().invoke(main, shlex.split(line)[1:])
    assert run.exit_code == 0, (line, run.output)
    return run.output


def _searches(client, page: Path) -> int:
    """Each ``curl`` of the page, followed by ``# → ids``: the ids the search (or read) answers."""
    checked = 0
    lines = commands(page)
    for line, expected in zip(lines, lines[1:]):
        if not (line.startswith("curl") and expected.startswith("# →")):
            continue
        path = re.search(r"'http://127\.0\.0\.1:8080(/fhir/[^']+)'", line).group(1).replace("|", "%7C")
        response = client.get(path)
        assert response.status_code == 200, (path, response.get_json())
        body = response.get_json()
        found = [e["resource"]["id"] for e in body.get("entry", [])] if body["resourceType"] == "Bundle" else [body["id"]]
        wanted = re.split(r"[:(]", expected.removeprefix("# →"))[0].split()
        assert sorted(found) == sorted(wanted), (path, found, wanted)
        checked += 1
    return checked


def test_the_reference_is_written_from_the_schema():
    assert (DOCS / "reference.md").read_text(encoding="utf-8") == reference_markdown(), (
        "run `fhir-facade mapping reference --out docs/mapping/reference.md`"
    )


def test_the_writing_guide_runs(clinic, monkeypatch):
    page = DOCS / "writing.md"
    for line in commands(page):
        if line.startswith("fhir-facade mapping"):
            assert _run(clinic, line, monkeypatch).rstrip().endswith("OK")
    serve = next(line for line in commands(page) if line.endswith("fhir-facade serve"))
    assert "FHIR_FACADE_MAPPING=clinic.yaml" in serve and "mode=ro&uri=true" in serve
    app = create_app(
        Settings(
            auth_mode="off",
            database_url=sqlite_url(clinic / "clinic.sqlite"),
            mapping=str(clinic / "clinic.yaml"),
            base_url="http://x/fhir",
        )
    )
    client = app.test_client()
    assert _searches(client, page) == 6
    patient = client.get("/fhir/Patient/2").get_json()
    assert patient["birthDate"] == "1980" and "telecom" not in patient  # as the page says
    app.extensions["fhir_facade"].adapter.engine.dispose()


def test_the_hooks_page_runs(clinic, monkeypatch):
    page = DOCS / "hooks.md"
    (clinic / "clinic_hooks.py").write_text(blocks(page, "python")[0], encoding="utf-8")
    monkeypatch.syspath_prepend(str(clinic))
    sys.modules.pop("clinic_hooks", None)
    mapping = clinic / "hooks.yaml"
    mapping.write_text(blocks(page, "yaml")[0], encoding="utf-8")
    app = create_app(
        Settings(auth_mode="off", database_url=sqlite_url(clinic / "clinic.sqlite"), mapping=str(mapping), base_url="http://x/fhir")
    )
    observation = app.test_client().get("/fhir/Observation/result-1").get_json()
    assert observation["valueQuantity"] == {"value": 7.2, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    app.extensions["fhir_facade"].adapter.engine.dispose()


def test_the_check_and_scaffold_page_runs(clinic, monkeypatch):
    page = DOCS / "check-and-scaffold.md"
    for line in commands(page):
        _run(clinic, line, monkeypatch)
    _run(clinic, "fhir-facade mapping check --mapping draft.yaml --db clinic.sqlite", monkeypatch)  # the draft checks
    # The errors shown are the ones check gives for those two mistakes in clinic.yaml.
    text = (clinic / "clinic.yaml").read_text(encoding="utf-8")
    broken = text.replace("birthDate: {parts", "birthdate: {parts").replace(
        "match: {r.patient_id: p.patient_id}}", "match: {r.patient_id: p.patient_id}, outter: true}"
    )
    (clinic / "broken.yaml").write_text(broken, encoding="utf-8")
    monkeypatch.chdir(clinic)
    run = CliRunner().invoke(main, ["mapping", "check", "--mapping", "broken.yaml", "--db", "clinic.sqlite"])
    shown = [line for line in blocks(page, "text")[0].splitlines() if line.startswith("ERROR")]
    for line in shown:
        assert line.replace("clinic.yaml", "broken.yaml").replace("ERROR    ", "") in run.output, (line, run.output)


def test_the_connections_page(clinic, monkeypatch):
    page = DOCS / "connections.md"
    for body in blocks(page, "text"):
        for url in body.split():
            parsed = sa.engine.make_url(url)
            if parsed.get_backend_name() == "sqlite":
                create_legacy_engine(url).dispose()  # the form the server accepts
    with pytest.raises(ValueError, match=re.escape("sqlite:///file:/var/lib/ehr/legacy.sqlite?mode=ro&uri=true")):
        create_legacy_engine("sqlite:////var/lib/ehr/legacy.sqlite")  # and says so when given another
    for line in commands(page):
        _run(clinic, line, monkeypatch)


def test_the_worked_example_runs(tmp_path, monkeypatch):
    from support.omop_fixture import load

    page = DOCS / "worked-example.md"
    mapping = ROOT / "legacy_adapters" / "sources" / "omop" / "mapping.yaml"
    held = mapping.read_text(encoding="utf-8")
    for excerpt in blocks(page, "yaml"):
        first, _, rest = excerpt.partition("\n")
        assert first == "# excerpt of legacy_adapters/sources/omop/mapping.yaml" and rest in held, rest
    load("sqlite", f"sqlite:///{tmp_path / 'omop.sqlite'}")
    check = next(line for line in commands(page) if line.startswith("fhir-facade mapping check"))
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(main, shlex.split(check.replace("legacy_adapters/", f"{ROOT}/legacy_adapters/"))[1:])
    assert run.exit_code == 0, run.output
    app = create_app(
        Settings(auth_mode="off", database_url=sqlite_url(tmp_path / "omop.sqlite"), mapping=str(mapping), base_url="http://x/fhir")
    )
    assert _searches(app.test_client(), page) == 6
    app.extensions["fhir_facade"].adapter.engine.dispose()


def test_the_index_names_the_schema_as_the_shipped_mappings_do():
    modeline = blocks(DOCS / "index.md", "text")[0].strip()
    for shipped in (ROOT / "legacy_adapters" / "sources").glob("*/mapping.yaml"):
        assert shipped.read_text(encoding="utf-8").splitlines()[0] == modeline
