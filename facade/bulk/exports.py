"""The export service the HTTP routes and the CLI call: kick-off, status, manifest, files, cancel.

Jobs belong to the client that started them: every lookup names the client, and another
client's job does not exist for it (404).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from facade.access.grant import Access
from facade.bulk.engine import ExportEngine
from facade.bulk.files import ERROR_FILE
from facade.bulk.jobs import COMPLETE, FAILED, Job, JobStore
from facade.bulk.pacing import Pacer
from facade.bulk.request import ExportRequest, parse_kickoff
from facade.bulk.runner import ExportRunner
from facade.errors import NotFound, TooManyRequests

POLL_SECONDS = 1  # Retry-After while a job runs: exports of the demo take seconds
# A status poll of a running job sooner than this after the last answered one gets 429. Half the
# Retry-After, so a client that waits what it is told (smart-fetch does) never meets it, whatever
# the jitter of its timer and of the network.
EARLY_POLL_SECONDS = POLL_SECONDS / 2


@dataclass(frozen=True)
class Status:
    job: Job
    done: bool
    manifest: dict | None = None


def client_of(access: Access) -> str:
    grant = access.grant
    return (grant.client_id or grant.subject or "") if grant is not None else ""


def grant_of(access: Access) -> dict:
    """The token's claims that decide what the job may read, kept with the job."""
    grant = access.grant
    if grant is None:
        return {"enforced": False}
    scope = " ".join([s.text for s in grant.scopes.resource] + list(grant.scopes.context))
    claims = {"scope": scope, "client_id": grant.client_id, "sub": grant.subject, "fhirUser": grant.fhir_user, "patient": grant.patient}
    return {"enforced": True, **{k: v for k, v in claims.items() if v}}


class BulkExports:
    def __init__(
        self, jobs: JobStore, engine: ExportEngine, runner: ExportRunner, root: Path, *, jobs_per_client: int, pacer: Pacer | None = None
    ):
        self.jobs = jobs
        self.pacer = pacer or Pacer(1.0)
        self.engine = engine
        self.runner = runner
        self.root = root
        self.jobs_per_client = jobs_per_client

    def kick_off(
        self,
        level: str,
        pairs: Iterable[tuple[str, str]],
        access: Access,
        request_url: str,
        *,
        lenient: bool,
        group_id: str | None = None,
        post: bool = False,
    ) -> Job:
        export = parse_kickoff(level, pairs, self.engine.catalogues, access, lenient=lenient, group_id=group_id, post=post)
        job = self.jobs.create(client_of(access), request_url, export.to_json(), grant_of(access), limit=self.jobs_per_client)
        if job is None:
            raise TooManyRequests(
                f"This client already has {self.jobs_per_client} exports under way; wait for one to finish or cancel it",
                retry_after=POLL_SECONDS * 10,
            )
        self.runner.start()
        return job

    def job(self, job_id: str, access: Access) -> Job:
        job = self.jobs.get(job_id, client_of(access))
        if job is None:
            raise NotFound("No such export (it may have expired or been cancelled)")
        return job

    def status(self, job_id: str, access: Access, base_url: str) -> Status:
        job = self.job(job_id, access)
        if job.status not in (COMPLETE, FAILED):
            if not self.jobs.poll(job.id, EARLY_POLL_SECONDS):
                raise TooManyRequests(f"Poll at most every {POLL_SECONDS} s (Retry-After)", retry_after=POLL_SECONDS)
            self.runner.start()  # this process runs exports too, and takes over abandoned ones
            return Status(job, False)
        return Status(job, True, manifest(job, base_url, self.root) if job.status == COMPLETE else None)

    def file(self, job_id: str, name: str, access: Access) -> tuple[Path, dict]:
        """The file's path and its manifest entry (type, count)."""
        job = self.job(job_id, access)
        listed = {o["name"]: o for o in job.outputs}
        if ExportRequest.from_json(job.request).notes:
            listed[ERROR_FILE] = {"type": "OperationOutcome", "name": ERROR_FILE}
        if job.status != COMPLETE or name not in listed or not (self.root / job.id / name).is_file():
            raise NotFound("No such file in this export")
        return self.root / job.id / name, listed[name]

    def cancel(self, job_id: str, access: Access) -> Job:
        job = self.job(job_id, access)
        self.jobs.cancel(job.id)
        return job


def manifest(job: Job, base_url: str, root: Path) -> dict:
    request = ExportRequest.from_json(job.request)
    files = f"{base_url}/$export-file/{job.id}/"
    errors = [{"type": "OperationOutcome", "url": files + ERROR_FILE}] if request.notes and (root / job.id / ERROR_FILE).is_file() else []
    return {
        "transactionTime": job.transaction_time,
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [{"type": o["type"], "url": files + o["name"], "count": o["count"]} for o in job.outputs if o["count"]],
        "error": errors,
    }


def counts(job: Job) -> dict[str, int]:
    """Resources written per type (for the audit trail and ``export status``)."""
    totals: dict[str, int] = {}
    for output in job.outputs:
        totals[output["type"]] = totals.get(output["type"], 0) + output["count"]
    return totals
