"""The mapping language: YAML in, SQL and resource builders out.

format.py     the format as a JSON Schema (mapping.schema.json, docs/mapping/reference.md via reference.py)
yamlpos.py    a YAML loader that keeps file:line:column; errors.py MappingError with every problem found
loader.py     the file → specs (what is served, known without the database), checked by validate.py
              (the schema), staticcheck.py (bindings, variables, names) and fhircheck.py/fhirdefs.py
              (templates against FHIR R4); variants.py expands variants
binder.py     specs → bound branches on live tables (reflection, joins, collections, code tables);
              idspaces.py: ids of one type's sources must not meet
bindings/     per search parameter type: the SQL predicate and sort key
compiler.py   a SearchRequest → one SQL statement per page
templates.py  resource templates → one generated Python function per branch
values.py     value expressions (columns, maps, dates, first-of, parts, lookups, hooks); codings.py
              code strings, crosswalks and units
filters.py    static row filters (``where:``)
columns.py    column converters, SQLite date columns read as stored, exact comparison
dates.py      legacy text date formats; datetypes.py typed, epoch and year/month/day dates
sqlexpr.py    predicate helpers that fold constants; codestrings.py multi-code text columns
check.py      ``fhir-facade mapping check``; scaffold.py ``fhir-facade mapping scaffold``;
              coverage.py ``fhir-facade terminology coverage``
"""
