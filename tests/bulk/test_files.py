"""NDJSON files of a job: a page's lines go out in one write per file, and rotation past the
size is the same as line by line."""

from __future__ import annotations

from facade.bulk.files import NdjsonFiles


class CountingHandle:
    def __init__(self, handle):
        self.handle = handle
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def _counting(files: NdjsonFiles) -> list[CountingHandle]:
    handles: list[CountingHandle] = []
    opened = files._handle

    def handle(name: str):
        found = opened(name)
        if not handles or handles[-1].handle is not found:
            handles.append(CountingHandle(found))
        return handles[-1]

    files._handle = handle  # type: ignore[method-assign]
    return handles


def test_a_page_is_one_write_per_file(tmp_path):
    files = NdjsonFiles(tmp_path, 1000, [])
    handles = _counting(files)
    lines = [b'{"id":"%d"}\n' % i for i in range(50)]
    files.write("Patient", lines)
    files.close()
    assert [h.writes for h in handles] == [1]
    assert (tmp_path / "Patient.001.ndjson").read_bytes() == b"".join(lines)
    assert files.outputs == [{"type": "Patient", "name": "Patient.001.ndjson", "count": 50, "bytes": sum(map(len, lines))}]


def test_rotation_within_a_page_is_as_line_by_line(tmp_path):
    lines = [b'{"id":"%03d"}\n' % i for i in range(40)]  # 13 bytes: 7 to a file
    files = NdjsonFiles(tmp_path / "pages", 100, [])
    handles = _counting(files)
    files.write("Observation", lines[:5])
    files.write("Observation", lines[5:])
    files.write("Patient", [b"x" * 300 + b"\n", b"y\n"])  # a line past the size still gets a file
    files.close()
    one = NdjsonFiles(tmp_path / "lines", 100, [])
    for line in lines:
        one.write("Observation", [line])
    for line in (b"x" * 300 + b"\n", b"y\n"):
        one.write("Patient", [line])
    one.close()
    assert files.outputs == one.outputs
    assert [o["count"] for o in files.outputs] == [7, 7, 7, 7, 7, 5, 1, 1]
    for output in files.outputs:
        name = output["name"]
        assert (tmp_path / "pages" / name).read_bytes() == (tmp_path / "lines" / name).read_bytes()
    assert [h.writes for h in handles] == [2, 1, 1, 1, 1, 1, 1, 1]  # the first file: one per page; then one per file
