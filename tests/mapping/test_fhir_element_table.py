"""The FHIR R4 element table the server reads (legacy_adapters/mapping/fhir-r4-elements.json) is
what the fhir.resources models say, and serving never loads the models themselves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from legacy_adapters.mapping import fhirdefs


def test_the_table_is_the_models_own():
    """Fails after an upgrade of fhir.resources until ``python -m legacy_adapters.mapping.fhirdefs``
    writes the table anew."""
    assert json.loads(fhirdefs.TABLE.read_text(encoding="utf-8")) == json.loads(json.dumps(fhirdefs.derive_table()))


def test_elements_read_from_the_table_match_the_models():
    for type_name in ("Patient", "Observation", "ObservationComponent", "Reference", "DocumentReference", "Coverage"):
        assert fhirdefs.elements(type_name) == fhirdefs._model_elements(type_name), type_name
    observation = fhirdefs.elements("Observation")
    assert observation is not None
    assert observation["status"].required and observation["status"].summary and "Patient" in (observation["subject"].targets or ())
    assert fhirdefs.elements("Narrative")["status"].codes == ("generated", "extensions", "additional", "empty")
    assert observation["valueQuantity"].choice == "value" and not observation["note"].summary
    assert fhirdefs.elements("NoSuchType") is None


SERVE = textwrap.dedent("""
    import sys
    from facade.app import create_app
    from facade.config import Settings

    app = create_app(Settings(auth_mode="off", demo_path=sys.argv[1], base_url="http://testserver/fhir"))
    client = app.test_client()
    for url in ("/fhir/metadata", "/fhir/Patient?_count=2&_summary=true", "/fhir/Observation?_count=2&_elements=status,code",
                "/fhir/Condition?_count=2&_summary=text"):
        assert client.get(url).status_code == 200, url
    print(sorted(m for m in sys.modules if m.split(".")[0] in ("fhir", "pydantic", "fhir_core")))
""")


def test_serving_loads_neither_the_models_nor_pydantic(demo_path):
    done = subprocess.run([sys.executable, "-c", SERVE, demo_path], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
