"""The façade's framework-free core: what a FHIR request means, whatever the transport.

service.py      read, search and $everything over adapters; narrows once; returns Results
bundle.py       searchset Bundles: links, entries, the outcome entry
includes.py     _include/_revinclude lookups, one batched search each
everything.py   Patient/$everything, paged across the compartment's types
subsetting.py   _summary and _elements
capability.py   the CapabilityStatement, from the adapters' catalogues
terminology.py  ConceptMap, CodeSystem and ValueSet, $translate, $lookup, $expand
"""
