"""etl.listen_blocks.count_lines (numpy, piece by piece) against bytes.count on generated
blocks: lines end at each newline, and at the block's end without one."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from songrec.etl.listen_blocks import COUNT_PIECE, count_lines


def _expected(data: bytes) -> int:
    return data.count(b"\n") + (len(data) > 0 and not data.endswith(b"\n"))


@settings(max_examples=40, deadline=None)
@given(
    st.one_of(st.integers(0, 5000), st.integers(COUNT_PIECE - 2, 3 * COUNT_PIECE + 2)),
    st.floats(0.0, 0.5),
    st.booleans(),
    st.integers(0, 2**32 - 1),
    st.integers(0, 64),
)
def test_count_lines_agrees_with_bytes_count(size, newline_share, at_edges, seed, spare):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size, dtype=np.uint8)
    data[data == 10] = 11
    data[rng.random(size) < newline_share] = 10
    if at_edges:  # newlines on both sides of every piece boundary
        edges = np.arange(COUNT_PIECE, size + 1, COUNT_PIECE)
        data[np.concatenate([edges - 1, edges[edges < size]])] = 10
    block = data.tobytes()
    # The block is the front of a bigger buffer, as iter_blocks hands it over.
    buffer = bytearray(block + b"\n" * spare)
    assert count_lines(buffer, len(block)) == _expected(block)
