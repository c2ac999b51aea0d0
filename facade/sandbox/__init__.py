"""The de-identified sandbox: the same mapping served through a de-identification policy.

``policy.py`` reads a policy file (allow-list first); ``keys.py`` holds the sandbox key and what
is derived from it (pseudonymous ids, per-patient date offsets, sealed paging cursors);
``deid.py`` applies a policy to one resource (usable on any resource stream: search pages,
``$everything``, exports); ``service.py`` is the sandbox FHIR service (read, search,
``$everything`` through the ordinary service, with the request translated in and the output
de-identified out); ``check.py`` looks for residual identifiers in the output.
"""
