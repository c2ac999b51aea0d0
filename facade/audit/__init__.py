"""The audit trail: every FHIR interaction and token event, append-only, hash-chained.

    store.py       the tables, append (waits for its batch's commit), verify, search
    writer.py      group commit: concurrent requests' records share one transaction
    auditevent.py  a record as a FHIR R4 AuditEvent
"""
