"""The mapping language: YAML in, SQL and resource builders out.

loader.py     the file → specs (what is served, known without the database); variants expanded
binder.py     specs → bound branches on live tables (reflection, joins, collections)
bindings/     per search parameter type: the SQL predicate and sort key
compiler.py   a SearchRequest → one SQL statement per page
templates.py  resource templates → one generated Python function per branch
values.py     value expressions (columns, maps, dates, crosswalks, hooks)
filters.py    static row filters (``where:``)
columns.py    column converters and exact comparison; dates.py legacy date formats
sqlexpr.py    predicate helpers that fold constants; codestrings.py multi-code text columns
check.py      ``fhir-facade mapping check``; coverage.py ``fhir-facade terminology coverage``
errors.py     MappingError
"""
