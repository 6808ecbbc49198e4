"""Names from the data are shown as themselves where Streamlit renders Markdown."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from songrec.app.page.text import plain

MARKUP = ["![x](https://host/p.png)", "**bold**", ":red[alert]", "$x^2$", ":tada:", "<b>x</b>"]


@given(st.one_of(st.text(), st.sampled_from(MARKUP)))
def test_every_punctuation_character_is_escaped_and_nothing_else_changes(text) -> None:
    shown = plain(text)
    # CommonMark renders "\\" + punctuation as the punctuation itself: undoing the escapes
    # gives the text back, and no punctuation is left unescaped to start any markup.
    assert re.sub(r"\\(.)", r"\1", shown, flags=re.S) == text
    escaped = False
    for char in shown:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            assert not re.fullmatch(r"[!-/:-@\[-`{-~]", char), (text, shown)
    assert not escaped
