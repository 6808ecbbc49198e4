"""The tar stream reader of compressed dumps (etl.dumps.formats.stream_members) and Python's
tarfile agree on generated archives: GNU and pax long names, unicode, directories, links,
empty files; a truncated archive is an error (after right members only), never a short read."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.etl.dumps.formats import CORRUPT, stream_members

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"),
    min_size=1,
    max_size=120,
)
members = st.lists(
    st.tuples(
        st.lists(names, min_size=1, max_size=3).map("/".join),
        st.sampled_from(["file", "file", "file", "dir", "symlink"]),
        st.binary(max_size=1500),
    ),
    max_size=6,
    unique_by=lambda m: m[0],
)


def _archive(entries: list[tuple[str, str, bytes]], fmt: int) -> bytes:
    sink = io.BytesIO()
    with tarfile.open(fileobj=sink, mode="w|", format=fmt) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "x" * len(data)
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return sink.getvalue()


def _by_tarfile(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """The files tarfile reads, and where the end-of-archive blocks start."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        files = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
        return files, tar.offset


def _by_stream(data: bytes, keep: list) -> list[tuple[str, bytes]]:
    for name, member in stream_members(io.BytesIO(data)):
        # Read a part only, sometimes: the rest must be skipped, not taken for a header.
        keep.append((name, member.read() if len(keep) % 2 == 0 else member.read(3)))
    return keep


@settings(max_examples=80, deadline=None)
@given(members, st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]), st.data())
def test_the_stream_reader_reads_what_tarfile_reads(entries, fmt, data):
    archive = _archive(entries, fmt)
    expected, end = _by_tarfile(archive)
    got = _by_stream(archive, [])
    assert [n for n, _ in got] == [n for n, _ in expected]
    for k, ((_, whole), (_, part)) in enumerate(zip(expected, got, strict=True)):
        assert part == (whole if k % 2 == 0 else whole[:3])
    # Cut before the end-of-archive blocks: always an error; what was read before the
    # data ran out is still right.
    cut = data.draw(st.integers(0, max(0, end - 1)))
    kept: list = []
    with pytest.raises(CORRUPT):
        _by_stream(archive[:cut], kept)
    assert len(kept) <= len(expected)
    for k, ((name, whole), (got_name, part)) in enumerate(zip(expected, kept, strict=False)):
        assert got_name == name and part == (whole if k % 2 == 0 else whole[:3])
