"""etl.dumps.staged.copy_span: the kernel's copy (copy_file_range) and the pread/write one give
exactly the bytes of the span, on generated files and spans; a file that ends inside the
span is an EOFError (a truncated tar), never a short copy."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.etl.dumps.staged import ParquetGroup, StagedParquet, copy_span, parquet_groups
from songrec.etl.listens import Rejects


def _copied(tmp: Path, data: bytes, offset: int, size: int, in_kernel: bool) -> bytes:
    source, target = tmp / "source", tmp / f"target-{in_kernel}"
    source.write_bytes(data)
    target.write_bytes(b"head")  # appended to, as a staged file is written from its start
    with source.open("rb") as src, target.open("ab") as out:
        copy_span(src.fileno(), out.fileno(), offset, size, in_kernel=in_kernel)
    return target.read_bytes()[4:]


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=5000), st.data())
def test_both_copies_give_the_span(tmp_path_factory, data, draw):
    tmp = tmp_path_factory.mktemp("span")
    offset = draw.draw(st.integers(0, len(data)))
    size = draw.draw(st.integers(0, len(data) - offset))
    want = data[offset : offset + size]
    assert _copied(tmp, data, offset, size, in_kernel=True) == want
    assert _copied(tmp, data, offset, size, in_kernel=False) == want


def test_a_large_span_is_copied_whole(tmp_path):
    data = os.urandom(3 << 20) * 7  # 21 MiB: several pieces of the pread/write copy
    for in_kernel in (True, False):
        assert (
            _copied(tmp_path, data, 12345, len(data) - 12345 - 6789, in_kernel)
            == (data[12345 : len(data) - 6789])
        )


@pytest.mark.parametrize("in_kernel", [True, False])
def test_a_span_past_the_end_is_an_eof_error(tmp_path, in_kernel):
    with pytest.raises(EOFError, match="ends inside a member"):
        _copied(tmp_path, b"x" * 1000, 900, 200, in_kernel)


# Grouping staged Parquet files: a few schemas and two reject counters to mix.
_SCHEMAS = [pa.schema([("a", pa.int64())]), pa.schema([("a", pa.string())])]
_REJECTS = [Rejects(), Rejects()]


@st.composite
def _items(draw) -> list:
    items = []
    for k in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 5)) == 0:
            items.append(f"other-{k}")  # a batch or JSON block: passes through, in order
            continue
        items.append(
            StagedParquet(
                Path(f"{k}.parquet"),
                f"{k}.parquet",
                draw(st.integers(0, 10)),
                draw(st.sampled_from(_REJECTS)),
                schema=draw(st.sampled_from(_SCHEMAS)),
            )
        )
    return items


@settings(max_examples=300, deadline=None)
@given(items=_items(), limit=st.integers(1, 25))
def test_parquet_groups_keep_order_and_join_only_what_fits(items, limit):
    out = list(parquet_groups(iter(items), limit))
    flat = [p for x in out for p in (x.parts if isinstance(x, ParquetGroup) else [x])]
    assert flat == items  # nothing lost, doubled or reordered
    assert not any(isinstance(x, StagedParquet) for x in out)  # every file is in a group
    for k, x in enumerate(out):
        if not isinstance(x, ParquetGroup):
            continue
        first = x.parts[0]
        assert all(p.rejects is first.rejects and p.schema.equals(first.schema) for p in x.parts)
        assert x.num_rows <= limit or len(x.parts) == 1
        # A group ends only where the next file could not join it.
        after = out[k + 1] if k + 1 < len(out) else None
        if isinstance(after, ParquetGroup):
            nxt = after.parts[0]
            assert (
                x.num_rows + nxt.rows > limit
                or nxt.rejects is not first.rejects
                or not nxt.schema.equals(first.schema)
            )
