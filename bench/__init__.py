"""Benchmark harness: the FHIR façade against a hand-written floor server (``python -m bench``)."""
