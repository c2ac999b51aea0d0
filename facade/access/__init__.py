"""The resource server's side of SMART on FHIR: who may see what, enforced in the SQL.

    tokens.py   bearer token → validated claims (signature, issuer, audience, expiry, revocation)
    scopes.py   scope string → ResourceScope values (SMART v1 and v2 grammar)
    grant.py    claims → Grant → per request type/interaction: allowed or not, plus the
                restrictions (search clauses) ANDed into every SearchRequest
    explain.py  what a scope string grants, for reviewers, from the same code
"""
