"""Crosswalk files: format errors are reported with file and line; an edit is picked up without a restart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from facade.app import create_app
from facade.config import Settings
from support.fhir_client import q, search_ids, search_resources
from terminology.files import TerminologyError, load_snapshot
from terminology.registry import Terminology

REPO = Path(__file__).resolve().parents[2]
DEMO_SET = REPO / "terminology" / "crosswalks" / "demo"
DEMO_MAPPING = REPO / "legacy_adapters" / "sources" / "demo" / "mapping.yaml"
LOINC = "http://loinc.org"
UDS_LOINC = "19659-2"  # what a steward maps the urine drug screen to in the edit below


@pytest.fixture()
def crosswalk_set(tmp_path) -> Path:
    target = tmp_path / "set"
    shutil.copytree(DEMO_SET, target)
    return target / "crosswalks.yaml"


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_aliases_resolve_to_system_uris(crosswalk_set):
    snapshot = load_snapshot([crosswalk_set])
    problems = snapshot.crosswalk("demo-problem")
    assert problems.target_systems == ("http://hl7.org/fhir/sid/icd-10-cm", "http://snomed.info/sct")
    assert snapshot.aliases["standard"]["SNOMED-CT"] == "http://snomed.info/sct"
    # 'narrower' is published but never stamped onto data: CAD carries only its SNOMED CT coding.
    assert [c["system"] for c in problems.codings_for("CAD")] == ["http://snomed.info/sct", "urn:fhir-facade:demo:problem"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'GLU,"GLUCOSE, SERUM",LOINC,2345-7,Glucose [Mass/volume] in Serum or Plasma,equivalent',
            'GLU,"GLUCOSE, SERUM",LOINC,2345-7,Glucose,same',
            "lab.csv:2: equivalence 'same'",
        ),
        (
            "HGBA1C,HEMOGLOBIN A1C,LOINC,",
            "HGBA1C,HEMOGLOBIN A1C,LONC,",
            "lab.csv:3: target_system 'LONC' is neither a URI nor a known alias",
        ),
        ("local_code,local_display,target_system", "code,local_display,target_system", "lab.csv: missing columns ['local_code']"),
    ],
)
def test_format_errors_name_file_and_line(crosswalk_set, old, new, message):
    _rewrite(crosswalk_set.parent / "lab.csv", old, new)
    with pytest.raises(TerminologyError, match=None) as caught:
        load_snapshot([crosswalk_set])
    assert message in str(caught.value)


def test_a_broken_edit_keeps_the_previous_crosswalks_in_service(crosswalk_set):
    terminology = Terminology([crosswalk_set], check_seconds=3600)
    before = terminology.current()
    _rewrite(crosswalk_set.parent / "lab.csv", "GLU,", "GLU")  # breaks the CSV's columns for that row
    _rewrite(crosswalk_set.parent / "lab.csv", "local_code,", "localcode,")
    assert terminology.reload() is False
    assert terminology.current() is before


def test_an_edited_crosswalk_is_picked_up_without_a_restart(tmp_path, crosswalk_set, demo_path, raw_db):
    mapping = yaml.safe_load(DEMO_MAPPING.read_text(encoding="utf-8"))
    mapping["terminology"]["crosswalks"] = [str(crosswalk_set)]
    mapping["terminology"]["check_seconds"] = 0  # check the files on every use
    mapping_path = tmp_path / "mapping.yaml"
    mapping_path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    client = create_app(Settings(auth_mode="off", demo_path=demo_path, mapping=str(mapping_path))).test_client()
    url = f"/fhir/Observation?code={q(LOINC + '|' + UDS_LOINC)}&_count=1000"
    assert search_ids(client, url) == []

    _rewrite(
        crosswalk_set.parent / "lab.csv",
        "UDS,URINE DRUG SCREEN,,,,unmatched",
        f"UDS,URINE DRUG SCREEN,LOINC,{UDS_LOINC},Drugs of abuse panel - Urine by Screen method,equivalent",
    )
    _rewrite(crosswalk_set, 'version: "2026.11.1"', 'version: "2026.11.2"')

    expected = {
        row[0]
        for row in raw_db.execute(
            "SELECT r.res_guid FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq WHERE r.test_cd = 'UDS' "
            "AND COALESCE(r.del_flg, 'N') <> 'Y' AND COALESCE(p.del_flg, 'N') <> 'Y'"
        )
    }
    found = search_resources(client, url)  # the search plan cached before the edit is not reused
    assert {r["id"] for r in found} == expected and expected
    assert all(
        r["code"]["coding"][0] == {"system": LOINC, "code": UDS_LOINC, "display": "Drugs of abuse panel - Urine by Screen method"}
        for r in found
    )
    concept_map = client.get("/fhir/ConceptMap/demo-lab").get_json()
    assert concept_map["version"] == "2026.11.2"


def test_a_check_reads_the_manifest_only_when_it_changed(crosswalk_set, monkeypatch):
    """Every few seconds each worker checks the files: stat calls, not a YAML parse per check."""
    import terminology.registry as registry

    live = Terminology([crosswalk_set], check_seconds=0)
    parsed: list[Path] = []
    real = registry.manifest_files
    monkeypatch.setattr(registry, "manifest_files", lambda manifest: parsed.append(manifest) or real(manifest))
    for _ in range(3):
        assert live.reload() is False
    assert parsed == []
    lab = crosswalk_set.parent / "lab.csv"
    lab.write_text(lab.read_text(encoding="utf-8") + "ZZZ,A NEW TEST,LOINC,1-8,A new test,equivalent\n", encoding="utf-8")
    assert live.reload() is True and parsed == []  # a listed file changed: the manifest's list still holds
    assert live.current().crosswalk("demo-lab").codings_for("ZZZ")[0]["code"] == "1-8"
    _rewrite(crosswalk_set, "version:", "# edited\nversion:")
    assert live.reload() is True and parsed == [crosswalk_set]  # the manifest changed: read again
