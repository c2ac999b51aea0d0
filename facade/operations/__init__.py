"""What an operator needs: health and readiness, metrics, request ids in logs.

    logs.py     the request id of the request being served (a context variable), a log filter
                that puts it on every line, and the JSON log format
    metrics.py  Prometheus metrics (prometheus-client; one registry across gunicorn workers)
    health.py   readiness: legacy database, state database, mapping bound, audit shipping current

The HTTP side (``/healthz``, ``/readyz``, ``/metrics``, the ``X-Request-ID`` header) is
facade/web/operations.py. Nothing here records patient data: labels and log fields are
interaction names, resource types, status codes and ids the server made up.
"""
