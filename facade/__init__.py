"""fhir-facade: a FHIR R4 API in front of a legacy EHR database."""

__version__ = "0.1.0"

__all__ = ["__version__"]
