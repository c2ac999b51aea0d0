"""CPU of a patient's first search of a kind against the same search again, in process.

    python -m bench.first_search [--size 1000] [--patients 300]

An app opening a chart asks for that patient's laboratory results, vital signs, conditions…:
each is a search the façade has not answered for that patient in the last minute, so its plan
(the statement for that search and those values) is not cached yet. The throughput benchmark
rotates through a few hundred URLs and answers them from cached plans; this one asks each
search for each of ``--patients`` patients, the first time and then once more at once (cached),
and prints the CPU per request of both, as ``python -m bench.cpu`` counts it.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import shutil
import tempfile
import time

import sqlalchemy as sa

from bench import cpu, data

SEARCHES = (
    ("Observation, laboratory (50 per page)", "/fhir/Observation?patient={}&category=laboratory&_count=50"),
    ("Observation, vital signs (50 per page)", "/fhir/Observation?patient={}&category=vital-signs&_count=50"),
    ("Observation, every category", "/fhir/Observation?patient={}&_count=50"),
    ("Condition", "/fhir/Condition?patient={}"),
    ("MedicationRequest", "/fhir/MedicationRequest?patient={}"),
    ("Encounter", "/fhir/Encounter?patient={}"),
    ("Patient $everything, first page of 100", "/fhir/Patient/{}/$everything?_count=100"),
)


def patients(db: str, count: int) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{db}", poolclass=sa.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT pt_guid FROM pt_master WHERE del_flg != 'Y' ORDER BY pt_seq LIMIT :n"), {"n": count})
        guids = [row[0] for row in rows]
    engine.dispose()
    return guids


def first_and_again(app: cpu.WSGI, environs: list[tuple[dict, dict]]) -> tuple[float, float]:
    """Microseconds of CPU per request: each patient's search, then the same search at once (its
    plans just made, whatever the cache holds; a `$everything` page makes about twenty)."""
    first = again = 0.0
    for fresh, repeated in environs:
        started = time.process_time()
        cpu._call(app, fresh)
        between = time.process_time()
        cpu._call(app, repeated)
        first, again = first + between - started, again + time.process_time() - between
    return first / len(environs) * 1e6, again / len(environs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="demo patients (default 1000)")
    parser.add_argument("--patients", type=int, default=300, help="patients searched, each once per search (default 300)")
    args = parser.parse_args()
    db = str(data.ensure_database(args.size))
    scratch = tempfile.mkdtemp(prefix="bench-first-")
    atexit.register(shutil.rmtree, scratch, True)  # registered first: it runs after the façade ships its audit spool
    app, token = cpu.facade_app(db, scratch)
    guids = patients(db, args.patients + 1)
    for _, template in SEARCHES:  # warm: the mapping bound, each search's shape seen once (a running server has)
        cpu._call(app, cpu._environ(template.format(guids[0]), token))
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 10)  # as facade.gunicorn.tune_collector does in a worker
    print(f"CPU per request in process, {args.size:,} patients, each search for {len(guids) - 1} patients")
    print(f"{'search':<42} {'first µs':>9} {'again µs':>9} {'first/again':>12}")
    for title, template in SEARCHES:
        pairs = [(cpu._environ(template.format(g), token), cpu._environ(template.format(g), token)) for g in guids[1:]]
        first, again = first_and_again(app, pairs)
        print(f"{title:<42} {first:>9.0f} {again:>9.0f} {first / again:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
