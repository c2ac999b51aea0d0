"""Legacy backends: how the façade reads a system of record it never writes to.

protocol.py     the contract a backend answers (LegacyAdapter: types, parameters, read, search)
sql_adapter.py  the generic SQL adapter: a mapping file plus a read-only engine
engines.py      read-only connections, and what driver failures mean to a client
code_tables.py  legacy code tables (lookups in SQL for values and searches, local code systems)
mapping/        the mapping language: loading, binding to tables, compiling searches to SQL
sources/        shipped mappings (the embedded demo, OpenEMR, OMOP CDM) and their hooks
"""
