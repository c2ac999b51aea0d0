"""The audit trail: every FHIR interaction and token event, append-only, hash-chained.

    store.py       the tables, append (one short transaction), verify, search
    auditevent.py  a record as a FHIR R4 AuditEvent
"""
