"""The floor: the benchmark URLs answered with the least possible machinery.

Same WSGI server as the façade (gunicorn, configured by the façade's own
``FacadeServer``, so workers, worker class, threads and keep-alive match), same
JSON encoder (orjson), same legacy database and driver: the read-only SQLite
file, or the PostgreSQL (psycopg2) or MariaDB (pymysql) server, one connection
per thread in autocommit, with the same SQL (``?`` placeholders become ``%s``
for the server drivers). What it leaves out: Flask,
the mapping engine, SQLAlchemy, search parsing, auth. Each URL shape gets one
hand-written query and hand-built dicts (:mod:`bench.floor_fhir`). Keyset
paging works like the façade's: ``next`` links carry the last row's sort key.

A façade cannot be faster than this; the ratio façade/floor is what the
façade's generality costs.

    python -m bench.floor --db FILE --port N [--workers W] [--flask]
    BENCH_FLOOR_CONNECT='{"driver": "psycopg2", "kwargs": {...}}' python -m bench.floor --port N

(a server's connect arguments come through the environment: they may hold a password).
"""

from __future__ import annotations

import argparse
import base64
import functools
import heapq
import itertools
import json
import os
import sqlite3
import threading
from urllib.parse import parse_qsl, urlencode

import orjson

from bench import floor_fhir as fhir
from facade.config import load_settings
from facade.gunicorn import FacadeServer

JSON = "application/fhir+json; charset=utf-8"
CONNECT_ENV = "BENCH_FLOOR_CONNECT"  # {"driver": "psycopg2"|"pymysql", "kwargs": {connect() arguments}}
NOT_DELETED = "p.del_flg != 'Y'"
# The façade's patient-compartment types in its $everything order (for the page's links).
EVERYTHING_TYPES = (
    "Patient",
    "AllergyIntolerance",
    "Condition",
    "DiagnosticReport",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Procedure",
    "Provenance",
)


class BadRequest(Exception):
    pass


@functools.lru_cache(maxsize=256)
def _format_style(sql: str) -> str:
    return sql.replace("?", "%s")  # no literal ? or % in the floor's SQL


def _connect_server(connect: dict):
    """A read-only autocommit connection with psycopg2 or pymysql; NUMERIC read as float,
    as the façade's schema declares it (``Numeric(asdecimal=False)``)."""
    if connect["driver"] == "psycopg2":
        import psycopg2
        import psycopg2.extensions as ext

        conn = psycopg2.connect(**connect["kwargs"])
        conn.set_session(readonly=True, autocommit=True)
        to_float = ext.new_type(ext.DECIMAL.values, "FLOOR_FLOAT", lambda value, _cur: None if value is None else float(value))
        ext.register_type(to_float, conn)
        return conn
    if connect["driver"] == "pymysql":
        import pymysql
        from pymysql.constants import FIELD_TYPE

        conv = dict(pymysql.converters.conversions)
        conv[FIELD_TYPE.NEWDECIMAL] = conv[FIELD_TYPE.DECIMAL] = float
        conn = pymysql.connect(**connect["kwargs"], autocommit=True, conv=conv)
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
        return conn
    raise ValueError(f"the floor has no driver {connect['driver']}")


class Floor:
    """The WSGI application: one database connection per thread, read-only."""

    def __init__(self, connect: dict):
        self.connect = connect  # {"path": sqlite file} or {"driver": ..., "kwargs": connect() arguments}
        self.sqlite = "path" in connect
        self.local = threading.local()

    def db(self):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            if self.sqlite:
                conn = sqlite3.connect(f"file:{self.connect['path']}?mode=ro", uri=True, check_same_thread=False)
            else:
                conn = _connect_server(self.connect)
            self.local.conn = conn
        return conn

    def execute(self, sql: str, args: tuple | list = ()):
        """A cursor over the statement's rows (sqlite3 reads lazily; the server drivers buffer)."""
        if self.sqlite:
            return self.db().execute(sql, args)
        cursor = self.db().cursor()
        cursor.execute(_format_style(sql), args)
        return cursor

    def __call__(self, environ, start_response):
        base = f"{environ['wsgi.url_scheme']}://{environ.get('HTTP_HOST', 'localhost')}/fhir"
        status, payload = self.answer(environ.get("PATH_INFO", ""), dict(parse_qsl(environ.get("QUERY_STRING", ""))), base)
        start_response(status, [("Content-Type", JSON), ("Content-Length", str(len(payload)))])
        return [payload]

    def answer(self, path: str, params: dict, base: str) -> tuple[str, bytes]:
        """The status line and JSON body for a URL's path and query parameters."""
        try:
            status, body = self.route(path, params, base)
        except (BadRequest, ValueError) as exc:
            status, body = "400 Bad Request", _outcome("invalid", str(exc))
        return status, orjson.dumps(body)

    def route(self, path: str, params: dict, base: str) -> tuple[str, dict]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["fhir", "Patient"] and len(parts) == 3:
            found = self.read_patient(parts[2])
            return ("200 OK", found) if found else ("404 Not Found", _outcome("not-found", "Patient not known"))
        if parts[:2] == ["fhir", "Patient"] and len(parts) == 4 and parts[3] == "$everything":
            return self.everything(parts[2], params, base)
        if parts == ["fhir", "Patient"]:
            return "200 OK", self.search_patients(params, base)
        if parts == ["fhir", "Observation"]:
            return "200 OK", self.search_observations(params, base)
        return "404 Not Found", _outcome("not-found", f"{path} is not served by the floor")

    # --- Patient ---------------------------------------------------------------------------
    def read_patient(self, guid: str) -> dict | None:
        row = self.execute(
            f"SELECT {fhir.PATIENT_COLUMNS} FROM pt_master p LEFT JOIN pt_master s ON s.pt_seq = p.merged_to_seq "
            f"WHERE p.pt_guid = ? AND {NOT_DELETED}",
            (guid,),
        ).fetchone()
        return fhir.patient(row) if row else None

    def search_patients(self, params: dict, base: str) -> dict:
        count = int(params.get("_count", 20))
        needle = params.get("name", "").upper()
        if not needle:
            raise BadRequest("the floor searches Patient by name only")
        after = _decode(params["_cursor"])[0] if "_cursor" in params else ""
        high = needle + "\U0010ffff"
        rows = self.execute(
            f"SELECT {fhir.PATIENT_COLUMNS} FROM pt_master p LEFT JOIN pt_master s ON s.pt_seq = p.merged_to_seq "
            f"WHERE {NOT_DELETED} AND ((p.last_nm >= ? AND p.last_nm < ?) OR (p.first_nm >= ? AND p.first_nm < ?)) "
            "AND p.pt_guid > ? ORDER BY p.pt_guid LIMIT ?",
            (needle, high, needle, high, after, count + 1),
        ).fetchall()
        resources = [fhir.patient(row) for row in rows[:count]]
        cursor = [resources[-1]["id"]] if len(rows) > count else None
        return _bundle(base, "Patient", params, count, resources, cursor)

    # --- Patient/$everything ---------------------------------------------------------------
    def everything(self, guid: str, params: dict, base: str) -> tuple[str, dict]:
        """The first page: the Patient, then each compartment type in the façade's order
        (AllergyIntolerance by id, Condition by recorded date descending across both of its
        tables), filling up to _count. The floor stops at Condition: the workload's patient
        has more than a page of those."""
        if params.keys() - {"_count", "_type"} or params.get("_type", ",".join(EVERYTHING_TYPES)) != ",".join(EVERYTHING_TYPES):
            raise BadRequest("the floor answers the first page of $everything, with _count (and its own _type) only")
        count = int(params.get("_count", 20))
        found = self.read_patient(guid)
        if found is None:
            return "404 Not Found", _outcome("not-found", "Patient not known")
        resources, full = [found], count == 1
        live = f"{NOT_DELETED} AND p.pt_guid = ?"
        if not full:
            rows = self.execute(
                f"SELECT {fhir.ALLERGY_COLUMNS} FROM allergy a JOIN pt_master p ON p.pt_seq = a.pt_seq "
                f"LEFT JOIN alg_cd c ON c.alg_cd = a.alg_cd WHERE a.del_flg != 'Y' AND {live} ORDER BY a.alg_guid LIMIT ?",
                (guid, count - len(resources) + 1),
            ).fetchall()
            full = len(rows) > count - len(resources)
            resources += [fhir.allergy(row) for row in rows[: count - len(resources)]]
        if not full:
            rows = self.execute(
                f"SELECT * FROM (SELECT {fhir.PROBLEM_COLUMNS}, q.entered_dt AS k FROM prob_list q JOIN pt_master p ON p.pt_seq = q.pt_seq "
                f"WHERE q.del_flg != 'Y' AND {live} UNION ALL "
                f"SELECT {fhir.DIAGNOSIS_COLUMNS}, dx.ent_dttm AS k FROM enc_dx dx JOIN pt_master p ON p.pt_seq = dx.pt_seq "
                f"JOIN enc_visit e ON e.visit_no = dx.visit_no WHERE dx.del_flg != 'Y' AND e.del_flg != 'Y' AND {live}) AS u "
                "ORDER BY k DESC, branch, id LIMIT ?",  # the façade's order: sort key, branch, id
                (guid, guid, count - len(resources) + 1),
            ).fetchall()
            full = len(rows) > count - len(resources)
            resources += [fhir.condition(row[:11]) for row in rows[: count - len(resources)]]
        if not full:
            raise BadRequest("the floor's $everything answers pages that end within Condition")
        url = f"{base}/Patient/{guid}/$everything?{urlencode([('_type', ','.join(EVERYTHING_TYPES)), ('_count', count)])}"
        last = resources[-1]
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [
                {"relation": "self", "url": url},
                {"relation": "next", "url": f"{url}&_cursor={_encode([last['resourceType'], last['id']])}"},
            ],
        }
        bundle["entry"] = [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources
        ]
        return "200 OK", bundle

    # --- Observation -----------------------------------------------------------------------
    def search_observations(self, params: dict, base: str) -> dict:
        count = int(params.get("_count", 20))
        patient = params.get("patient", "").rpartition("/")[2] or None
        category = params.get("category")
        loinc = None
        if "code" in params:
            system, _, loinc = params["code"].rpartition("|")
            if system != fhir.LOINC:
                raise BadRequest("the floor searches code by LOINC (http://loinc.org|code) only")
        if patient is None and loinc is None:
            raise BadRequest("the floor needs patient or code")
        cursor = tuple(_decode(params["_cursor"])) if "_cursor" in params else None
        streams = []
        if category in (None, "laboratory"):
            streams.append(self._labs(patient, loinc, cursor, count + 1))
        if category in (None, "vital-signs"):
            branches = frozenset(b for b, v in enumerate(fhir.VARIANTS, 1) if loinc is None or loinc in fhir.variant_codes(v))
            if branches:
                streams.append(self._vitals(patient, branches, cursor, count + 1))
        if category in (None, "social-history") and loinc in (None, fhir.SMOKING_LOINC) and patient is not None:
            streams.append(self._smoking(patient, cursor, count + 1))
        if patient is not None:
            for spec in fhir.SOCIAL_BRANCHES:
                if (category is None or category in spec.categories) and loinc in (None, spec.loinc):
                    streams.append(self._social(spec, patient, cursor, count + 1))
        # Façade order: date descending, then branch (lab 0, vitals 1..12, smoking 13, occupation,
        # pregnancy and the Hunger Vital Sign 14..19), then id.
        merged = heapq.merge(*streams, key=lambda item: item[0])
        page = list(itertools.islice(merged, count + 1))
        for stream in streams:
            stream.close()  # closes the cursors (resets SQLite statements left unfinished)
        resources = [resource for _, resource in page[:count]]
        next_key = page[count - 1][0].position() if len(page) > count else None
        return _bundle(base, "Observation", params, count, resources, next_key)

    def _labs(self, patient: str | None, loinc: str | None, cursor: tuple | None, limit: int):
        where, args = ["r.del_flg != 'Y'", NOT_DELETED], []
        if patient is not None:
            where.append("p.pt_guid = ?")
            args.append(patient)
        if loinc is not None:
            # Resolve the LOINC code to local test codes first: the code table is tiny, and
            # filtering lab_result on test_cd lets the database walk ix_lab_result_test_dt in order.
            codes = [c for (c,) in self.execute("SELECT test_cd FROM lab_test_cd WHERE loinc_cd = ?", (loinc,))]
            if not codes:
                return
            where.append(f"r.test_cd IN ({','.join('?' * len(codes))})")
            args += codes
        if cursor is not None:
            when, branch, rid = cursor
            where.append("(r.collect_dttm < ? OR (r.collect_dttm = ? AND ? = 0 AND r.res_guid > ?))")
            args += [when, when, branch, rid]
        sql = (
            f"SELECT {fhir.LAB_COLUMNS} FROM lab_result r JOIN pt_master p ON p.pt_seq = r.pt_seq "
            f"LEFT JOIN lab_test_cd t ON t.test_cd = r.test_cd WHERE {' AND '.join(where)} "
            "ORDER BY r.collect_dttm DESC, r.res_guid LIMIT ?"
        )
        rows = self.execute(sql, (*args, limit))
        try:
            for row in rows:
                yield _Key(row[6], 0, row[0]), fhir.lab(row)
        finally:
            rows.close()

    def _vitals(self, patient: str | None, branches: frozenset[int], cursor: tuple | None, batch: int):
        if patient is None:
            raise BadRequest("the floor searches vital signs by patient only")
        where, args = ["v.del_flg != 'Y'", NOT_DELETED, "p.pt_guid = ?"], [patient]
        if cursor is not None:
            where.append("v.taken_dttm <= ?")
            args.append(cursor[0])
        sql = f"SELECT {fhir.VITALS_COLUMNS} FROM vitals v JOIN pt_master p ON p.pt_seq = v.pt_seq WHERE {' AND '.join(where)}"
        if self.sqlite:
            rows = self.execute(sql + " ORDER BY v.taken_dttm DESC", args)  # read lazily: stops when the page is full
        else:
            rows = self._vitals_batches(sql, args, batch)
        try:
            # Rows taken at the same time interleave by branch, then id: sort each such group.
            for when, group in itertools.groupby(rows, key=lambda row: row[3]):
                items = sorted((_Key(when, b, r["id"]), r) for row in group for b, r in fhir.vitals(row, branches))
                for key, resource in items:
                    if cursor is None or key.after(cursor):
                        yield key, resource
        finally:
            rows.close()

    def _vitals_batches(self, sql: str, args: list, batch: int):
        """Vital-signs rows, newest first, ``batch`` at a time: the server drivers read a whole
        result into memory. A full batch's last time may be cut short by the LIMIT, so its rows
        start the next batch instead."""
        bound: list = []
        while True:
            rows = self.execute(
                f"{sql}{' AND v.taken_dttm <= ?' if bound else ''} ORDER BY v.taken_dttm DESC LIMIT ?", (*args, *bound, batch)
            ).fetchall()
            if len(rows) < batch:
                yield from rows
                return
            last = rows[-1][3]
            complete = [row for row in rows if row[3] != last]
            if complete:
                yield from complete
                bound = [last]
            else:
                batch *= 2  # one time fills the batch

    def _smoking(self, patient: str, cursor: tuple | None, limit: int):
        where, args = ["h.del_flg != 'Y'", NOT_DELETED, "p.pt_guid = ?"], [patient]
        if cursor is not None:
            when, branch, rid = cursor
            where.append("(h.rec_dttm < ? OR (h.rec_dttm = ? AND (? < ? OR (? = ? AND h.sh_guid > ?))))")
            args += [when, when, branch, fhir.SMOKING_BRANCH, branch, fhir.SMOKING_BRANCH, rid]
        sql = (
            f"SELECT {fhir.SMOKING_COLUMNS} FROM soc_hx h JOIN pt_master p ON p.pt_seq = h.pt_seq "
            f"WHERE {' AND '.join(where)} ORDER BY h.rec_dttm DESC, h.sh_guid LIMIT ?"
        )
        rows = self.execute(sql, (*args, limit))
        try:
            for row in rows:
                yield _Key(row[3], fhir.SMOKING_BRANCH, row[0]), fhir.smoking(row)
        finally:
            rows.close()

    def _social(self, spec: fhir.SocialBranch, patient: str, cursor: tuple | None, limit: int):
        where, args = [NOT_DELETED, "p.pt_guid = ?"], [patient]
        if cursor is not None:
            when, branch, rid = cursor
            guid = rid.removesuffix(spec.suffix) if spec.suffix else rid  # same branch: the same suffix
            where.append(f"({spec.when} < ? OR ({spec.when} = ? AND (? < ? OR (? = ? AND {spec.guid} > ?))))")
            args += [when, when, branch, spec.branch, branch, spec.branch, guid]
        sql = f"{spec.sql} AND {' AND '.join(where)} ORDER BY {spec.when} DESC, {spec.guid} LIMIT ?"
        rows = self.execute(sql, (*args, limit))
        try:
            for row in rows:
                yield _Key(row[3], spec.branch, row[0] + spec.suffix), spec.build(row)
        finally:
            rows.close()


class _Key:
    """Sort position (date descending, branch, id) of one Observation."""

    __slots__ = ("branch", "rid", "when")

    def __init__(self, when, branch: int, rid: str):
        self.when, self.branch, self.rid = when, branch, rid

    def __lt__(self, other: _Key) -> bool:
        if self.when != other.when:
            return self.when > other.when
        return (self.branch, self.rid) < (other.branch, other.rid)

    def after(self, cursor: tuple) -> bool:
        return _Key(*cursor) < self

    def position(self) -> list:
        return [self.when, self.branch, self.rid]


def _bundle(base: str, resource_type: str, params: dict, count: int, resources: list[dict], cursor: list | None) -> dict:
    query = [(k, v) for k, v in params.items() if k not in ("_count", "_cursor")] + [("_count", str(count))]
    url = f"{base}/{resource_type}?{urlencode(query)}"
    links = [{"relation": "self", "url": url + (f"&_cursor={params['_cursor']}" if "_cursor" in params else "")}]
    if cursor is not None:
        links.append({"relation": "next", "url": f"{url}&_cursor={_encode(cursor)}"})
    bundle = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if resources:
        bundle["entry"] = [{"fullUrl": f"{base}/{resource_type}/{r['id']}", "resource": r, "search": {"mode": "match"}} for r in resources]
    return bundle


def _encode(position: list) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).rstrip(b"=").decode()


def _decode(token: str) -> list:
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise BadRequest("bad _cursor") from None


def _outcome(code: str, text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}


def in_flask(floor: Floor):
    """The floor inside the least a Flask app is: one route for every URL, answered by the floor.

    Measured against the plain floor (``python -m bench --ceiling``), it shows what Flask's own
    request and response machinery costs, which bounds the ratio any Flask app can reach.
    """
    import flask

    app = flask.Flask("bench.floor")

    @app.route("/<path:_path>")
    def answer(_path: str) -> flask.Response:
        request = flask.request
        # the query read as the plain floor reads it (the last of a repeated key, no empty values)
        params = dict(parse_qsl(request.query_string.decode("latin-1")))
        status, payload = floor.answer(request.path, params, request.host_url + "fhir")
        return flask.Response(payload, status=status, content_type=JSON)

    return app


class FloorServer(FacadeServer):
    """The façade's gunicorn configuration, serving the floor app instead."""

    def __init__(self, settings, connect: dict, flask: bool = False):
        self.connect, self.flask = connect, flask
        super().__init__(settings)

    def load_config(self) -> None:
        super().load_config()
        self.cfg.set("proc_name", "fhir-floor")

    def load(self):
        floor = Floor(self.connect)
        return in_flask(floor) if self.flask else floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="demo SQLite file (default: the server in BENCH_FLOOR_CONNECT)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--flask", action="store_true", help="serve the floor inside a minimal Flask app (see in_flask)")
    args = parser.parse_args()
    settings = load_settings(overrides={"host": args.host, "port": args.port, "workers": args.workers, "threads": args.threads})
    if not args.db and not os.environ.get(CONNECT_ENV):
        parser.error(f"--db or {CONNECT_ENV} is required")
    FloorServer(settings, {"path": args.db} if args.db else json.loads(os.environ[CONNECT_ENV]), flask=args.flask).run()


if __name__ == "__main__":
    main()
