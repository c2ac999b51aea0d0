"""Helpers of the US Core type tests: answers of the API and of hand-written SQL over the demo
database (``support.demo_sql.RECORD_TYPES``), never of the mapping engine."""

from __future__ import annotations

from support.demo_sql import RECORD_TYPES, record_sql
from support.fhir_client import walk

NEW_TYPES = (*RECORD_TYPES, "PractitionerRole")


def ids_of(client, url: str) -> list[str]:
    """Every match id of a search, page after page (includes left out)."""
    return [e["resource"]["id"] for b in walk(client, url) for e in b.get("entry", []) if e["search"]["mode"] == "match"]


def sql_ids(raw_db, resource_type: str, where: str = "1 = 1", params: tuple = ()) -> set[str]:
    return {row[0] for row in raw_db.execute(record_sql(resource_type, where), params)}


def busiest_for(raw_db, resource_type: str, where: str = "1 = 1", params: tuple = ()) -> str:
    """The patient with the most resources of the type meeting ``where`` (several pages at a small _count)."""
    sql = f"SELECT patient, count(*) n FROM ({record_sql(resource_type, where)}) r GROUP BY patient ORDER BY n DESC, patient LIMIT 1"
    return raw_db.execute(sql, params).fetchone()[0]
