"""Bulk ``$export`` on the sandbox: the export engine's jobs (facade/bulk), de-identified.

A sandbox job is an ordinary export job with two marks in the state database: its owner is
``sandbox:<client>`` (so the identified API, which looks jobs up by the bare client id, never
finds it) and its recorded grant names the policy it was started under (so the sandbox never
serves an identified job). The engine runs it like any other; :func:`shaper` gives it the page
transform that puts every resource through the policy before a byte is written. No lookups are
needed per resource: the pseudonyms and the patient's date offset are keyed functions of ids the
resource itself holds.

Kick-off parameters are checked as the sandbox's search checks them: the types, ``_typeFilter``
parameters and ``_elements`` are the policy's only (400 otherwise), ``patient`` takes
pseudonyms, and ``_since``/``_until`` are refused (they compare legacy update times, which the
sandbox does not show).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from facade.access.grant import Access
from facade.bulk.engine import Shape
from facade.bulk.exports import BulkExports, client_of, grant_of
from facade.bulk.jobs import Job
from facade.bulk.request import ExportRequest, compile_type_filter, parse_kickoff
from facade.errors import FacadeError, InvalidRequest, NotFound, TooManyRequests, UnsupportedParameter
from facade.sandbox.service import SandboxService
from facade.search.request import SearchRequest
from legacy_adapters.mapping.fhirdefs import elements as element_defs

MARK = "sandbox"  # the recorded grant's key naming the policy a sandbox job runs under
OWNER = "sandbox:"  # the job owner's prefix: a sandbox job is never the identified client's


class PolicyChanged(FacadeError):
    """A sandbox job the running policy cannot honour: it fails rather than export anything else."""

    status = 500
    code = "exception"


def shaper(sandbox: SandboxService | None) -> Callable[[Job], Shape | None]:
    """The engine's page transform for each job: the sandbox's policy for its jobs, nothing for
    identified ones. Fails closed: a sandbox job with no sandbox, or another policy, fails."""

    def shape_of(job: Job) -> Shape | None:
        policy = job.grant.get(MARK)
        if policy is None:
            return None
        if sandbox is None or sandbox.policy.name != policy:
            raise PolicyChanged("This sandbox export was started under a policy this server no longer applies")
        deid = sandbox.deid

        def shape(resources: list[dict]) -> list[dict]:
            shown = (deid.resource(resource) for resource in resources)
            return [resource for resource in shown if resource is not None]

        return shape

    return shape_of


class SandboxExports(BulkExports):
    """The export service over the sandbox's policy: kick-off checks and job ownership; status,
    manifest, files and cancel are the export service's own."""

    def __init__(self, bulk: BulkExports, sandbox: SandboxService):
        super().__init__(bulk.jobs, bulk.engine, bulk.runner, bulk.root, jobs_per_client=bulk.jobs_per_client)
        self.sandbox = sandbox

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
        if group_id is not None:  # no shipped policy serves Group; a Group kick-off is not routed
            raise NotFound(f"Group/{group_id} is not known")
        pairs = [self._pair(name, value) for name, value in pairs]
        catalogues = self.sandbox.inner.catalogues
        export = parse_kickoff(level, pairs, catalogues, access, lenient=lenient, post=post)
        self._check_filters(export)
        self._check_elements(export)
        grant = {**grant_of(access), MARK: self.sandbox.policy.name}
        job = self.jobs.create(owner(access), request_url, export.to_json(), grant, limit=self.jobs_per_client)
        if job is None:
            raise TooManyRequests(
                f"This client already has {self.jobs_per_client} exports under way; wait for one to finish or cancel it",
                retry_after=10,
            )
        self.runner.start()
        return job

    def job(self, job_id: str, access: Access) -> Job:
        job = self.jobs.get(job_id, owner(access))
        if job is None or job.grant.get(MARK) is None:
            raise NotFound("No such export (it may have expired or been cancelled)")
        return job

    # -- kick-off checks ------------------------------------------------------------------

    def _pair(self, name: str, value: str) -> tuple[str, str]:
        if name in ("_since", "_until") and value:
            raise InvalidRequest(
                f"{name} is not offered by the sandbox: it compares the legacy's update times, which the sandbox does not show",
                expression=name,
            )
        if name == "patient" and value:
            pseudonym = value.strip().rpartition("/")[2]
            legacy = self.sandbox.deid.key.reveal("Patient", pseudonym) if pseudonym else None
            if legacy is None:
                raise InvalidRequest(f"patient '{value[:40]}' is not a Patient of this sandbox", expression="patient")
            return name, f"Patient/{legacy}"
        return name, value

    def _check_filters(self, export: ExportRequest) -> None:
        """``_typeFilter`` queries run as stored, on legacy values: only parameters whose values
        mean the same in both (no ids or references, which the client knows as pseudonyms), and
        dates only as the sandbox's search takes them (its own rules, via ``translate``)."""
        catalogues = self.sandbox.inner.catalogues
        for queries in export.type_filters.values():
            for query in queries:
                resource_type, clauses = compile_type_filter(query, catalogues)
                for clause in clauses:
                    if clause.name == "_id" or clause.type == "reference":
                        raise UnsupportedParameter(
                            f"_typeFilter cannot use '{clause.name}' in the sandbox; name patients with the patient parameter",
                            expression="_typeFilter",
                        )
                self.sandbox.translate(SearchRequest(resource_type, clauses=clauses))

    def _check_elements(self, export: ExportRequest) -> None:
        """An ``_elements`` name the policy removes (from any exported type that has it) is refused."""
        for element in export.elements:
            named, _, path = element.rpartition(".")
            for resource_type in [named] if named else export.types:
                rules = self.sandbox.policy.resources.get(resource_type)
                if rules is None:
                    if named:
                        raise InvalidRequest(f"_elements '{element}': {named} is not served by the sandbox", expression="_elements")
                    continue
                if path not in (element_defs(resource_type) or {}):
                    continue
                rule = rules.elements.get(path)
                if rule is None or rule.action == "remove":
                    raise InvalidRequest(f"_elements '{element}' names an element the sandbox removes", expression="_elements")


def owner(access: Access) -> str:
    return OWNER + client_of(access)
