"""The resource server's side of SMART on FHIR: who may see what, enforced in the SQL.

tokens.py   bearer token → validated claims (signature, issuer, audience, expiry, revocation)
scopes.py   scope string → ResourceScope values: the one SMART v1/v2 grammar (the
            authorization server's consent page reads scopes with it too)
grant.py    claims → Grant → Access: per type and interaction allowed or not, and
            ``narrow(request)``, the restrictions (search clauses) ANDed into every query
"""
