"""The parsed search, frozen, and its canonical query string for Bundle links."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlencode

from facade.search.params import Include, SearchClause, SortKey


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    clauses: tuple[SearchClause, ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = 20
    cursor: tuple | None = None  # keyset position after which this page starts (from cursor_token, checked)
    before: bool = False  # the page ends before ``cursor`` instead (a ``previous`` link)
    cursor_token: str | None = field(default=None, compare=False)  # _cursor as received: the self link repeats it
    total: str = "none"  # none | accurate
    summary_count: bool = False
    ignored: tuple[str, ...] = ()  # unknown parameters that were ignored (reported to the client)
    includes: tuple[Include, ...] = ()  # _include and _revinclude, checked against the served types
    summary: str | None = None  # _summary: true | text | data (false and count need no trimming)
    elements: tuple[str, ...] = ()  # _elements: top-level elements to keep
    # Reference parameters whose target ids the adapter reports per page (Page.references).
    references: tuple[str, ...] = ()
    # Added by authorization (facade/access), never shown in links: each group is an OR of
    # alternatives, each alternative an AND of clauses; groups are ANDed with ``clauses``.
    restrictions: tuple[tuple[tuple[SearchClause, ...], ...], ...] = ()

    def link_params(self) -> list[tuple[str, str]]:
        """The parameters actually applied, in a stable order (R4 search §3.1.1.5.2)."""
        params = [(c.key, c.raw) for c in self.clauses]
        if self.sort:
            params.append(("_sort", ",".join(str(k) for k in self.sort)))
        if self.total != "none":
            params.append(("_total", self.total))
        if self.summary_count:
            params.append(("_summary", "count"))
        elif self.summary:
            params.append(("_summary", self.summary))
        if self.elements:
            params.append(("_elements", ",".join(self.elements)))
        params += [(include.parameter, str(include)) for include in self.includes]
        params.append(("_count", str(self.count)))
        return params

    def canonical(self) -> str:
        """The query (not the page), as text: equal for equal searches. Covers the restrictions,
        so a cursor or a cached plan made under one grant is never used under another."""
        text = self.resource_type + "?" + urlencode([(k, v) for k, v in self.link_params() if k != "_count"])
        return text + "#" + restrictions_text(self.restrictions) if self.restrictions else text

    def fingerprint(self) -> str:
        """Identifies the query (not the page) so a cursor cannot be replayed on another search."""
        return hashlib.blake2s(self.canonical().encode(), digest_size=6).hexdigest()


def restrictions_text(groups: tuple[tuple[tuple[SearchClause, ...], ...], ...], *, readable: bool = False) -> str:
    """``(a=1&b=2 | c=3) & (d=4)``: restrictions as FHIR search text; percent-encoded (unambiguous,
    for fingerprints) unless ``readable`` (for reviewers)."""

    def clause(c: SearchClause) -> str:
        return f"{c.key}={c.raw}" if readable else urlencode([(c.key, c.raw)])

    return " AND ".join("(" + " OR ".join(" & ".join(clause(c) for c in alternative) for alternative in group) + ")" for group in groups)
