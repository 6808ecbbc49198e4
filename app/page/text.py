"""Names from the data shown as themselves on a page that renders Markdown."""

from __future__ import annotations

import re

from songrec.app.listen_links import listen_links


def plain(text: str) -> str:
    """`text` shown as itself where Streamlit renders Markdown (st.markdown, st.table cells).

    Names come from the data: every ASCII punctuation character is backslash-escaped, which
    CommonMark defines as the literal character, so no emphasis, link, image, KaTeX ($),
    colour directive (:red[...]) or emoji shortcode (:tada:) can form.
    """
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", text)


def count(n: int, noun: str = "song") -> str:
    """'1 song', '2 songs'."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def links_markdown(artist: str, title: str, mbid: object = None) -> str:
    """Listen links as Markdown (labels are fixed words; URLs are percent-encoded)."""
    return " · ".join(f"[{link.label}]({link.url})" for link in listen_links(artist, title, mbid))
