"""The audit trail: every FHIR interaction and token event, append-only, hash-chained.

records.py     the two kinds of record (REST interaction, token event)
store.py       the tables, append, the chain, verify, search
spool.py       delivery "spool": a worker-owned file before the response, shipped to the chain
writer.py      delivery "commit": group commit, concurrent requests' records share one transaction
auditevent.py  a record as a FHIR R4 AuditEvent
search.py      AuditEvent read and search, through the same contract as a legacy adapter
"""
