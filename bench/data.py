"""Demo databases for the benchmark (cached) and the workloads run against them.

Databases are cached under ``bench/.data/`` keyed by size, seed and a hash of
the generator's source, so a changed generator never serves stale data.
Workload URLs use real ids spread over the whole table; wrk rotates through
them so that no single cached row flatters either server.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bench.floor import EVERYTHING_TYPES
from legacy_adapters.sources.demo import generate as generator
from legacy_adapters.sources.demo import schema

DATA_DIR = Path(__file__).resolve().parent / ".data"
SAMPLE = 200  # ids per rotating workload
CODE = "2345-7"  # LOINC glucose: the code-search workload


@dataclass(frozen=True)
class Workload:
    name: str  # stable key, used in the JSON output
    title: str  # for the table
    paths: tuple[str, ...]  # URLs (path + query) wrk rotates through; the walk starts at paths[0]
    kind: str = "wrk"  # "wrk" (load generator) or "walk" (Python, follows next links)


def generator_hash() -> str:
    digest = hashlib.sha256()
    for module in (generator, schema):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:8]


def ensure_database(size: int, seed: int = generator.DEMO_SEED, data_dir: Path = DATA_DIR) -> Path:
    """The cached demo database for (size, seed), generated on first use."""
    path = data_dir / f"demo-{size}-s{seed}-{generator_hash()}.sqlite"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        print(f"generating the demo database: {size} patients (seed {seed}) -> {path}", flush=True)
        started = time.monotonic()
        generator.generate(str(path), patients=size, seed=seed)  # writes a temp file, then renames
        print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    return path


def _spread(db: sa.Connection, sql: str, count: int) -> list:
    """Up to ``count`` values of the query's first column, evenly spaced over its rows."""
    values = [row[0] for row in db.execute(sa.text(sql))]
    step = max(1, len(values) // count)
    return values[::step][:count]


def workloads(url: str) -> list[Workload]:
    """The URLs of every workload, chosen from the legacy database at ``url`` (any engine)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.connect() as db:
        live = "FROM pt_master p WHERE p.del_flg != 'Y'"
        patients = _spread(db, f"SELECT p.pt_guid {live} ORDER BY p.pt_seq", SAMPLE)
        with_labs = _spread(
            db,
            f"SELECT p.pt_guid {live} AND EXISTS (SELECT 1 FROM lab_result r WHERE r.pt_seq = p.pt_seq "
            "AND r.del_flg != 'Y') ORDER BY p.pt_seq",
            SAMPLE,
        )
        last_names = _spread(db, f"SELECT p.last_nm {live} ORDER BY p.pt_seq", SAMPLE)
        prefixes = list(dict.fromkeys(n[:3].title() for n in last_names if n and n[:3].isalpha()))
        chronic = db.execute(sa.text("SELECT pt_guid FROM pt_master WHERE pt_seq = :seq"), {"seq": generator.CHRONIC_SEQ}).scalar_one()
    engine.dispose()
    return [
        Workload("patient_read", "Patient read", tuple(f"/fhir/Patient/{g}" for g in patients)),
        Workload("patient_search_name", "Patient?name=<3 letters>", tuple(f"/fhir/Patient?name={p}&_count=20" for p in prefixes)),
        Workload(
            "observation_search_lab",
            "Observation?patient&category=lab",
            tuple(f"/fhir/Observation?patient={g}&category=laboratory&_count=50" for g in with_labs),
        ),
        Workload(
            "observation_search_code", f"Observation?code=loinc|{CODE}", (f"/fhir/Observation?code=http://loinc.org%7C{CODE}&_count=50",)
        ),
        Workload(
            "observation_paging_walk",
            "Observation paging walk (chronic pt)",
            (f"/fhir/Observation?patient={chronic}&_count=50",),
            kind="walk",
        ),
        # The compartment's first ten types (as the floor knows them): the figures stay comparable
        # as the compartment grows.
        Workload(
            "patient_everything",
            "Patient $everything, 1st page of 100",
            (f"/fhir/Patient/{chronic}/$everything?_type={','.join(EVERYTHING_TYPES)}&_count=100",),
        ),
    ]
