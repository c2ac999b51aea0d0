"""FHIR R4 RESTful search, parsed once into typed values.

Spec: https://hl7.org/fhir/R4/search.html

The parser turns a query string into a frozen :class:`SearchRequest` of typed
parameters; backends receive data, never raw strings, and only answer
"how do I filter on this column".
"""

from facade.search.params import (
    DateValue,
    Include,
    Prefix,
    ReferenceValue,
    SearchClause,
    SearchParamDef,
    SortKey,
    StringValue,
    TokenValue,
)
from facade.search.parser import parse_search
from facade.search.request import SearchRequest

__all__ = [
    "DateValue",
    "Include",
    "Prefix",
    "ReferenceValue",
    "SearchClause",
    "SearchParamDef",
    "SearchRequest",
    "SortKey",
    "StringValue",
    "TokenValue",
    "parse_search",
]
