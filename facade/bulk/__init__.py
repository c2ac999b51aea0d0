"""FHIR Bulk Data Access 2.0 ``$export``: the whole record out, as NDJSON files, in the background.

    request.py   kick-off parameters → a frozen :class:`ExportRequest` (checked before a job exists)
    jobs.py      the jobs' table in the state database: create, claim with a lease, checkpoint, cancel, expire
    engine.py    one job's run: each type's narrowed searches, page by page (keyset), into NDJSON files
    files.py     the NDJSON writer: rotation at a size, truncation back to the last checkpoint on resume
    runner.py    background threads that claim queued or abandoned jobs and run them
    manifest.py  the completion manifest

The export reads through the same path as REST search: ``Access.narrow`` adds the token's
restrictions, the adapter compiles each page to one SQL statement, and the keyset cursor of the
last page written is the job's resume position.
"""
