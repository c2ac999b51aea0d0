"""One export job's run: for each type, the token's narrowed search, page by page, into NDJSON.

Every page is one SQL statement through the adapter (the REST search path); the keyset cursor
of the last page written, with the type and the patient batch, is the resume position
checkpointed with the files' sizes (after a type's last page, and after any page a second or
more after the last checkpoint). Memory holds one page, whatever the database's size.

Patient-scoped exports (a Group's members, the ``patient`` parameter) walk the patients in
batches: each type's compartment clause names one batch of patients at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import orjson

from facade.access.grant import Access, Grant
from facade.bulk.files import NdjsonFiles
from facade.bulk.jobs import Job
from facade.bulk.request import ExportRequest, compile_type_filter, time_clauses
from facade.core.subsetting import keep_for_elements, subset
from facade.errors import operation_outcome
from facade.search.compartment import PATIENT_COMPARTMENT_PARAM
from facade.search.params import STORAGE_ORDER, ReferenceValue, SearchClause, SearchParamDef, TokenValue
from facade.search.request import SearchRequest
from legacy_adapters.protocol import Page

PATIENT_BATCH = 200  # patients named in one compartment clause
Each = Callable[[dict], object]  # given each resource of a page, in order
Query = Callable[[SearchRequest, Each], Page]  # an already narrowed request → one page, its resources given to ``each``
Members = Callable[[str, tuple | None, int], Page]  # group id, cursor, count → a page of its Patients
Shape = Callable[[list[dict]], list[dict]]  # one page's resources → what is written (e.g. de-identified)
Shaper = Callable[[Job], Shape | None]  # a job → its page transform, if it has one


class Stopped(Exception):
    """The job was cancelled, or another runner holds its lease now."""


@dataclass
class Progress:
    """Where the run is: the type, the patient batch it started from, the keyset cursor within."""

    type_index: int = 0
    batch: object = None  # the member cursor (Group) or offset (patient list) the current batch started at
    cursor: tuple | None = None

    def to_json(self) -> dict:
        return {"type": self.type_index, "batch": self.batch, "cursor": list(self.cursor) if self.cursor is not None else None}

    @classmethod
    def from_json(cls, data: Mapping | None) -> Progress:
        if not data:
            return cls()
        cursor = data.get("cursor")
        return cls(data.get("type", 0), data.get("batch"), tuple(cursor) if cursor is not None else None)


def access_for(grant: Mapping, catalogue: Callable[[str], Mapping[str, SearchParamDef]]) -> Access:
    """The job's access, rebuilt from the claims recorded at kick-off."""
    return Access(Grant.from_claims(grant), catalogue) if grant.get("enforced") else Access.unrestricted()


class ExportEngine:
    def __init__(
        self,
        query: Query,
        catalogues: Mapping[str, Mapping[str, SearchParamDef]],
        members: Members,
        *,
        page_size: int = 1000,
        max_bytes: int = 100 * 1024 * 1024,
        checkpoint_seconds: float = 1.0,
        shaper: Shaper | None = None,
        pace: Callable[[float], None] | None = None,
    ):
        """``shaper``: the transform, if any, a job's pages go through before they are written
        (the sandbox's jobs: its policy); it may raise to fail a job it cannot honour.
        ``checkpoint_seconds``: pages written within this time of the last checkpoint get none of
        their own (a type's last page always does): each checkpoint is an fsync and a state
        database commit, and a runner that dies redoes at most this much. ``pace``: called with
        each page's seconds once it is built (a :class:`facade.bulk.pacing.Pacer` may pause)."""
        self.query = query
        self.shaper = shaper
        self.catalogues = catalogues
        self.members = members
        self.page_size = page_size
        self.max_bytes = max_bytes
        self.checkpoint_seconds = checkpoint_seconds
        self.pace = pace

    def run(self, job: Job, directory: Path, checkpoint: Callable[[dict, list[dict], str], bool]) -> list[dict]:
        """Export from the job's last position; ``checkpoint(position, outputs, progress)`` returns
        False to stop. Returns the outputs (files) once every type is done."""
        request = ExportRequest.from_json(job.request)
        shape = self.shaper(job) if self.shaper is not None else None
        access = access_for(job.grant, self.catalogues.__getitem__)
        files = NdjsonFiles(directory, self.max_bytes, job.outputs)
        progress = Progress.from_json(job.position)
        keep = {t: keep_for_elements(t, request.elements) for t in request.types} if request.elements else {}
        try:
            for index in range(progress.type_index, len(request.types)):
                resource_type = request.types[index]
                written = sum(o["count"] for o in files.outputs if o["type"] == resource_type)
                kept = keep.get(resource_type)
                lines: list[bytes] = []
                built: list[dict] = []

                def encode(resource: dict, kept: frozenset[str] | None = kept, lines: list[bytes] = lines) -> None:
                    lines.append(orjson.dumps(subset(resource, kept) if kept is not None else resource) + b"\n")

                # Each resource is encoded as it is built and let go (a page of built resources
                # held at once is what the garbage collector would walk), unless the job's
                # transform needs the page.
                each = built.append if shape is not None else encode
                last_checkpoint = time.monotonic()
                for position, _page in self._pages(request, access, resource_type, progress, each):
                    if shape is not None:
                        for resource in shape(built):
                            encode(resource)
                        built.clear()
                    files.write(resource_type, lines)
                    written += len(lines)
                    lines.clear()
                    if position is not None and time.monotonic() - last_checkpoint < self.checkpoint_seconds:
                        continue
                    last_checkpoint = time.monotonic()
                    files.sync()
                    # None: this was the type's last page, so a resumed run starts at the next type.
                    position = Progress(index + 1) if position is None else replace(position, type_index=index)
                    label = f"{resource_type}: {written} resources ({index + 1} of {len(request.types)} types)"
                    if not checkpoint(position.to_json(), files.outputs, label):
                        raise Stopped(job.id)
                progress = Progress(index + 1)
            if request.notes:
                files.write_errors(
                    [orjson.dumps(operation_outcome("information", "informational", note)) + b"\n" for note in request.notes]
                )
        finally:
            files.close()
        return files.outputs

    # -- the pages of one type ------------------------------------------------------------

    def _pages(
        self, request: ExportRequest, access: Access, resource_type: str, start: Progress, each: Each
    ) -> Iterator[tuple[Progress | None, Page]]:
        """Each page with the position after it (None after the type's last page); its resources
        go to ``each``."""
        base = self._base(request, access, resource_type)
        resuming = start.type_index == request.types.index(resource_type)
        if not (request.group_id or request.patients):
            for cursor, page in self._walk(base, start.cursor if resuming else None, each):
                yield (Progress(cursor=cursor) if cursor is not None else None), page
            return
        batch, cursor = (start.batch, start.cursor) if resuming else (None, None)
        for following, patients in self._batches(request, batch):
            narrowed = replace(base, clauses=(*base.clauses, _compartment(resource_type, patients)))
            for after, page in self._walk(narrowed, cursor, each):
                if after is not None:
                    yield Progress(batch=batch, cursor=after), page
                else:  # this batch is done: resume at the next one, if any
                    yield (Progress(batch=following) if following is not None else None), page
            batch, cursor = following, None

    def _walk(self, request: SearchRequest, cursor: tuple | None, each: Each) -> Iterator[tuple[tuple | None, Page]]:
        """Pages of one search from ``cursor``, each with the cursor after it (None: the last)."""
        while True:
            started = time.monotonic()
            page = self.query(replace(request, cursor=cursor), each)
            if self.pace is not None:
                self.pace(time.monotonic() - started)
            cursor = page.next_cursor
            yield cursor, page
            if cursor is None:
                return

    def _base(self, request: ExportRequest, access: Access, resource_type: str) -> SearchRequest:
        """The type's search as the token may run it, with ``_since``/``_until`` and, after the
        token's own restrictions, the ``_typeFilter`` queries as one more group (OR-ed)."""
        catalogue = self.catalogues[resource_type]
        # Paged in storage order (primary keys, else ids): keys never change, so a row updated
        # during the export cannot move across the cursor (as it could on a date sort), and the
        # table is read in the order it is stored (by a random id such as a guid, each row of a
        # large table was a page read of its own).
        clauses = time_clauses(resource_type, request, catalogue)
        search = SearchRequest(resource_type, clauses=clauses, sort=(STORAGE_ORDER,), count=self.page_size)
        narrowed = access.narrow(search, "search")
        queries = request.type_filters.get(resource_type, ())
        if queries:
            group = tuple(compile_type_filter(q, self.catalogues)[1] for q in queries)
            narrowed = replace(narrowed, restrictions=(*narrowed.restrictions, group))
        return narrowed

    def _batches(self, request: ExportRequest, start: object) -> Iterator[tuple[object, tuple[str, ...]]]:
        """From the batch starting at ``start``: each batch of patient ids, with where the next
        batch starts (None after the last), so a resumed run goes on from a batch boundary."""
        if request.patients and request.group_id is None:
            offset = int(start or 0)  # type: ignore[call-overload]
            while offset < len(request.patients):
                following = offset + PATIENT_BATCH
                yield (following if following < len(request.patients) else None), request.patients[offset:following]
                offset = following
            return
        assert request.group_id is not None
        chosen = set(request.patients)  # with `patient`: only those of the group's members
        cursor = tuple(start) if isinstance(start, list) else None
        while True:
            page = self.members(request.group_id, cursor, PATIENT_BATCH)
            cursor = page.next_cursor
            following = list(cursor) if cursor is not None else None
            members = tuple(r["id"] for r in page.resources if not chosen or r["id"] in chosen)
            if members:
                yield following, members
            if cursor is None:
                return


def _compartment(resource_type: str, patients: tuple[str, ...]) -> SearchClause:
    """One clause: ``resource_type`` resources in any of these patients' compartments."""
    name = PATIENT_COMPARTMENT_PARAM[resource_type]
    raw = ",".join(patients)
    if name == "_id":
        return SearchClause(name, "token", None, tuple(TokenValue(None, p) for p in patients), raw=raw)
    return SearchClause(name, "reference", None, tuple(ReferenceValue("Patient", p) for p in patients), raw=raw)
