"""The HTTP edge (Flask): with the app factory, the only code that knows the web framework.

state.py              FacadeState: everything an app holds, in one extension slot
routes.py             FHIR REST routes (thin) and openapi_docs.py, what the OpenAPI document says of them
auth.py               bearer token → Access, per request
audit_hook.py         one audit record per interaction and per token event
terminology_routes.py ConceptMap, CodeSystem, ValueSet endpoints
rendering.py          JSON responses, content negotiation
error_handlers.py     every failure as an OperationOutcome
cors.py               cross-origin access for browser apps
smart/                the authorization server's endpoints
"""
