"""What a scope string grants, per resource type, computed by the code the server enforces with.

For each served type and interaction: allowed or not (and why), the restrictions as
FHIR search text, and the WHERE fragment the SQL compiler produces for them on each
legacy source. ``fhir-facade scopes explain`` prints this for security reviewers.
"""

from __future__ import annotations

from facade.access.grant import Access, Grant
from facade.access.scopes import parse_scopes
from facade.errors import FacadeError
from facade.search.compartment import PATIENT_COMPARTMENT_PARAM
from facade.search.request import SearchRequest, restrictions_text
from legacy_adapters.sql_adapter import SqlAdapter

INTERACTIONS = ("read", "search")  # what this server serves; writes answer 405


def explain(scope_text: str, adapter: SqlAdapter, patient: str | None = None) -> dict:
    scopes = parse_scopes(scope_text)
    access = Access(Grant(scopes=scopes, patient=patient), adapter.search_params)
    types: dict[str, dict] = {}
    for resource_type in sorted(adapter.resource_types()):
        entry: dict = {"compartment": PATIENT_COMPARTMENT_PARAM.get(resource_type)}
        for interaction in INTERACTIONS:
            try:
                restrictions = access.restrictions(resource_type, interaction)
            except FacadeError as error:
                entry[interaction] = {"allowed": False, "status": error.status, "reason": error.diagnostics}
                continue
            request = SearchRequest(resource_type, restrictions=restrictions)
            entry[interaction] = {
                "allowed": True,
                "filter": restrictions_text(restrictions, readable=True) or "(all rows)",
                "sql": adapter.explain_sql(request),
            }
        types[resource_type] = entry
    return {
        "scopes": [s.text for s in scopes.resource],
        "context_scopes": list(scopes.context),
        "malformed_scopes_granting_nothing": list(scopes.malformed),
        "patient": patient,
        "types": types,
    }


def render_text(report: dict) -> str:
    lines = [f"scopes: {' '.join(report['scopes']) or '(no resource scopes)'}"]
    if report["context_scopes"]:
        lines.append(f"context scopes (grant no data by themselves): {' '.join(report['context_scopes'])}")
    if report["malformed_scopes_granting_nothing"]:
        lines.append(f"malformed, grant nothing: {' '.join(report['malformed_scopes_granting_nothing'])}")
    lines.append(f"patient context: {report['patient'] or '(none)'}")
    for resource_type, entry in report["types"].items():
        compartment = f"patient compartment by '{entry['compartment']}'" if entry["compartment"] else "no patient compartment"
        lines.append("")
        lines.append(f"{resource_type}  ({compartment})")
        for interaction in INTERACTIONS:
            answer = entry[interaction]
            if not answer["allowed"]:
                lines.append(f"  {interaction}: refused ({answer['status']}): {answer['reason']}")
                continue
            lines.append(f"  {interaction}: allowed; rows where {answer['filter']}")
            for source, sql in answer["sql"].items():
                lines.append(f"    SQL [{source}]: WHERE {' '.join(sql.split())}")
    return "\n".join(lines)
