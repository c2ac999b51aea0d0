"""The error of the mapping package: every problem found, each with where it was written."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from legacy_adapters.mapping.yamlpos import Mark, mark_of


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a mapping: where (``file:line:column``, when the mapping came from a
    file), what part of it (a path such as ``Observation source 'labs' resource.code``) and why."""

    message: str
    mark: Mark | None = None
    where: str = ""

    def __str__(self) -> str:
        place = f"{self.mark}: " if self.mark is not None else ""
        return f"{place}{self.where + ': ' if self.where else ''}{self.message}"


class MappingError(ValueError):
    """The mapping file says something the engine cannot do; raised when the mapping is loaded or
    bound to the database, never per request. Holds every problem found, not only the first."""

    def __init__(self, message: str | Iterable[Problem], mark: Mark | None = None, where: str = ""):
        if isinstance(message, str):
            problems = [Problem(message, mark, where)]
        else:
            problems = list(message)
        self.problems: list[Problem] = problems
        super().__init__("\n".join(str(p) for p in problems))

    def within(self, where: str, mark: Mark | None = None) -> MappingError:
        """The same problems, placed under ``where`` (and at ``mark`` where they had none)."""
        return MappingError(Problem(p.message, p.mark or mark, f"{where} {p.where}".strip() if p.where else where) for p in self.problems)


def error_at(node: Any, key: Any, message: str, where: str = "") -> MappingError:
    """An error about ``node[key]`` (or ``node`` itself when ``key`` is None), at its place in the file."""
    return MappingError(message, mark_of(node, key) if key is not None else mark_of(node), where)


class Problems:
    """Collects problems so that a whole mapping is reported at once."""

    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, message: str, mark: Mark | None = None, where: str = "") -> None:
        problem = Problem(message, mark, where)
        if problem not in self.found:
            self.found.append(problem)

    def extend(self, error: MappingError) -> None:
        for problem in error.problems:
            if problem not in self.found:
                self.found.append(problem)

    def raise_any(self) -> None:
        if self.found:
            raise MappingError(sorted(self.found, key=_order))

    def __bool__(self) -> bool:
        return bool(self.found)


def _order(problem: Problem) -> tuple:
    mark = problem.mark
    return (mark.file, mark.line, mark.column) if mark is not None else ("", 0, 0)
