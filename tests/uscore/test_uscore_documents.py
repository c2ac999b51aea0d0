"""The legacy text readers behind notes and devices (legacy_adapters/sources/documents.py)."""

from __future__ import annotations

import base64

from legacy_adapters.sources.demo.record_hooks import comma_name, plan_narrative, team_member
from legacy_adapters.sources.documents import base64_text, udi_carrier, udi_date, udi_field, v2_unescape


def test_v2_escapes():
    assert v2_unescape("A\\T\\P: BP\\.br\\PRN \\F\\ \\S\\ \\E\\ \\X0D\\") == "A&P: BP\nPRN | ^ \\ \\X0D\\"  # unknown kept
    assert base64.b64decode(base64_text("Évaluation") or "").decode("utf-8") == "Évaluation"
    assert base64_text("") is None and base64_text(None) is None


def test_udi_strings():
    hrf = "(01)00643169007222(17)260100(11)240115(10)A1234(21)SN999"
    assert udi_carrier(hrf) == {
        "deviceIdentifier": "00643169007222",
        "issuer": "http://hl7.org/fhir/NamingSystem/gs1-di",
        "carrierHRF": hrf,
    }
    assert (udi_field(hrf, "10"), udi_field(hrf, "21"), udi_date(hrf, "17"), udi_date(hrf, "11")) == (
        "A1234",
        "SN999",
        "2026-01",
        "2024-01-15",
    )
    assert udi_carrier("+H123PARTNO1/$$420020216LOT123") is None  # not GS1: no carrier invented
    assert udi_date("(17)261399", "17") is None and udi_field(None, "10") is None


def test_plan_team_and_name_hooks():
    assert plan_narrative("HTN: <140/90 & LOW SALT~ ~RTC 3 MO") == (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>HTN: &lt;140/90 &amp; LOW SALT</p><p>RTC 3 MO</p></div>'
    )
    assert plan_narrative("~") is None
    assert team_member(None, role="1", display="x") is None
    assert team_member("K. OKAFOR RN", role="1", display="x", by_name=True)["member"] == {"display": "K. OKAFOR RN"}
    assert comma_name("DE LA CRUZ,ANA MARIA") == {"text": "Ana Maria De La Cruz", "family": "De La Cruz", "given": ["Ana", "Maria"]}
    assert comma_name(",ROSA") == {"text": "Rosa", "given": ["Rosa"]}
