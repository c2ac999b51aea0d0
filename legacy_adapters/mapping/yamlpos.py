"""Reading a mapping file so that every error can name its ``file:line:column``.

Plain YAML loading forgets where things were written. This loader keeps it: strings come back
as :class:`YStr` (a ``str`` that knows its :class:`Mark`), mappings as :class:`YDict` and lists
as :class:`YList`, which know their own mark and those of their keys and items. They behave
exactly like ``str``, ``dict`` and ``list`` everywhere else. A key written twice in one mapping
is an error (YAML would silently keep the last); keys merged in with ``<<: *anchor`` may be
overridden, as YAML intends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)  # one per node of a mapping (thousands), kept for the process's life
class Mark:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class YStr(str):
    """A string from the mapping file, with where it was written."""

    mark: Mark | None = None

    def __new__(cls, value: str, mark: Mark | None = None) -> YStr:
        text = super().__new__(cls, value)
        text.mark = mark
        return text

    def __reduce__(self) -> Any:
        return (YStr, (str(self), self.mark))


class YDict(dict):
    """A mapping from the file: its own mark, and the marks of its keys and values."""

    mark: Mark | None = None
    flow = False  # written {…} on one line

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_marks: dict[Any, Mark] = {}
        self.value_marks: dict[Any, Mark] = {}

    def __reduce__(self) -> Any:
        return (_rebuild_dict, (dict(self), self.mark, self.key_marks, self.value_marks))


class YList(list):
    mark: Mark | None = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_marks: list[Mark | None] = []

    def __reduce__(self) -> Any:
        return (_rebuild_list, (list(self), self.mark, self.item_marks))


def _rebuild_dict(items: dict, mark: Mark | None, key_marks: dict, value_marks: dict) -> YDict:
    node = YDict(items)
    node.mark, node.key_marks, node.value_marks = mark, dict(key_marks), dict(value_marks)
    return node


def _rebuild_list(items: list, mark: Mark | None, item_marks: list) -> YList:
    node = YList(items)
    node.mark, node.item_marks = mark, list(item_marks)
    return node


def plain(node: Any) -> Any:
    """``node`` as plain str, dict and list: what goes into resources carries no marks."""
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dict):
        return {plain(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def mark_of(node: Any, key: Any = None) -> Mark | None:
    """Where ``node`` (or, given ``key``, its value at ``key`` or list index) was written."""
    if key is not None:
        if isinstance(node, YDict):
            value = node.get(key)
            own = getattr(value, "mark", None)
            return own or node.value_marks.get(key) or node.key_marks.get(key) or node.mark
        if isinstance(node, YList) and isinstance(key, int) and 0 <= key < len(node):
            own = getattr(node[key], "mark", None)
            return own or (node.item_marks[key] if key < len(node.item_marks) else None) or node.mark
    return getattr(node, "mark", None)


def key_mark(node: Any, key: Any) -> Mark | None:
    """Where a key of a mapping was written (for 'unknown key' errors)."""
    if isinstance(node, YDict):
        return node.key_marks.get(key) or node.mark
    return getattr(node, "mark", None)


def located(value: Any, mark: Mark | None) -> Any:
    """``value`` carrying ``mark`` when it is a string (a substituted variable keeps its place)."""
    if isinstance(value, str) and mark is not None and getattr(value, "mark", None) is None:
        return YStr(value, mark)
    return value


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: Mark, again: Mark):
        super().__init__(
            f"{again}: key {key!r} is written twice in this mapping (first at line {first.line}); YAML would keep only the last"
        )
        self.mark = again


def load(text: str, file: str) -> Any:
    """The YAML document in ``text``, with marks naming ``file``."""
    loader = _PositionLoader(text)
    loader.file, loader.marks = file, {}
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class _PositionLoader(_Loader):
    file = "<mapping>"

    marks: dict[tuple[int, int], Mark]

    def _mark(self, node: yaml.Node) -> Mark:
        # A node's mark is asked for several times (its own, its entry in its parent): one object per place.
        place = (node.start_mark.line, node.start_mark.column)
        mark = self.marks.get(place)
        if mark is None:
            mark = self.marks[place] = Mark(self.file, place[0] + 1, place[1] + 1)
        return mark

    def construct_yaml_str(self, node: yaml.ScalarNode) -> YStr:
        return YStr(self.construct_scalar(node), self._mark(node))

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        data = YList()
        data.mark = self._mark(node)
        yield data
        for child in node.value:
            data.append(self.construct_object(child, deep=True))
            data.item_marks.append(self._mark(child))

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data = YDict()
        data.mark = self._mark(node)
        data.flow = bool(node.flow_style)
        yield data
        explicit: dict[Any, Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in explicit:
                    raise DuplicateKey(key, explicit[key], self._mark(key_node))
                explicit[key] = self._mark(key_node)
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            data[key] = self.construct_object(value_node, deep=True)
            data.key_marks[key] = self._mark(key_node)
            data.value_marks[key] = self._mark(value_node)


_PositionLoader.add_constructor("tag:yaml.org,2002:str", _PositionLoader.construct_yaml_str)
_PositionLoader.add_constructor("tag:yaml.org,2002:seq", _PositionLoader.construct_yaml_seq)
_PositionLoader.add_constructor("tag:yaml.org,2002:map", _PositionLoader.construct_yaml_map)
