"""A body is a body, whatever its framing: ``Transfer-Encoding: chunked`` gets the same size limit
(413), media-type check (415) and parsing as a ``Content-Length`` body on every POST route.
(The same requests through gunicorn's own HTTP stack: tests/operations/test_http_stack.py.)"""

from __future__ import annotations

import io
import json

import pytest

FORM = "application/x-www-form-urlencoded"
PARAMETERS = "application/fhir+json"
LIMIT = 1024 * 1024


def _post(client, path: str, body: bytes, content_type: str, *, chunked: bool):
    if not chunked:
        return client.post(path, data=body, content_type=content_type)
    # gunicorn de-chunks the stream and says so with wsgi.input_terminated: the test client does neither.
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": content_type},
        environ_overrides={"wsgi.input_terminated": True},
    )


@pytest.fixture(scope="module")
def patient_id(app) -> str:
    return app.test_client().get("/fhir/Patient?_count=1").get_json()["entry"][0]["resource"]["id"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_form_search_reads_the_whole_body(client, patient_id, chunked):
    response = _post(client, "/fhir/Patient/_search", f"_id={patient_id}&_elements=id".encode(), FORM, chunked=chunked)
    assert response.status_code == 200, response.data
    assert [e["resource"]["id"] for e in response.get_json()["entry"]] == [patient_id]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_413_never_cut(client, patient_id, chunked):
    body = b"_pad=" + b"A" * LIMIT + f"&_id={patient_id}".encode()
    for path, content_type in (
        ("/fhir/Patient/_search", FORM),
        (f"/fhir/Patient/{patient_id}/$everything", PARAMETERS),
        ("/fhir/ConceptMap/$translate", PARAMETERS),
    ):
        response = _post(client, path, body, content_type, chunked=chunked)
        assert response.status_code == 413, (path, response.status_code, response.data[:200])
        assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_of_the_wrong_media_type_is_415(client, patient_id, chunked):
    for path, content_type in (("/fhir/Patient/_search", "application/json"), (f"/fhir/Patient/{patient_id}/$everything", "text/plain")):
        response = _post(client, path, b"{}", content_type, chunked=chunked)
        assert response.status_code == 415, (path, response.data)


@pytest.mark.parametrize("chunked", [False, True])
def test_everything_reads_a_parameters_body(client, patient_id, chunked):
    body = json.dumps(
        {"resourceType": "Parameters", "parameter": [{"name": "_count", "valueInteger": 1}, {"name": "_type", "valueString": "Patient"}]}
    ).encode()
    response = _post(client, f"/fhir/Patient/{patient_id}/$everything", body, PARAMETERS, chunked=chunked)
    assert response.status_code == 200, response.data
    assert [e["resource"]["resourceType"] for e in response.get_json()["entry"]] == ["Patient"]


@pytest.mark.parametrize("chunked", [False, True])
def test_terminology_operations_read_a_parameters_body(client, chunked):
    body = json.dumps({"resourceType": "Parameters", "parameter": [{"name": "count", "valueInteger": 1}]}).encode()
    response = _post(client, "/fhir/ValueSet/demo-lab-tests/$expand", body, PARAMETERS, chunked=chunked)
    assert response.status_code == 200, response.data
    assert len(response.get_json()["expansion"]["contains"]) == 1


def test_a_chunked_body_the_server_did_not_dechunk_is_411_not_ignored(client):
    response = client.post(
        "/fhir/Patient/_search", input_stream=io.BytesIO(b"_id=x"), headers={"Transfer-Encoding": "chunked", "Content-Type": FORM}
    )
    assert response.status_code == 411, response.data
    assert response.get_json()["resourceType"] == "OperationOutcome"
