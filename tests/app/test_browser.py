"""The real page in a real browser: `songrec app` + Debian's Chromium driven by Playwright.

A visitor finds a song by search and one by artist, recommends (ten rows with listen
links), adds a recommended song, shows the next ten, downloads the JSPF playlist and reads
it, then closes the browser and finds the list again with the same cookies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from page_helpers import export_lines, export_zip
from page_server import CHROMIUM, CHROMIUM_ARGS, REPO, serve

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# SONGREC_SCREENSHOTS=docs writes the screenshots README shows (docs/, committed);
# otherwise they land in tests/artifacts/ (gitignored) for a human to look at.
SCREENSHOTS_ENV = "SONGREC_SCREENSHOTS"
WAIT_MS = 30_000
# Tall enough for the whole page: Streamlit scrolls an inner element, not the document.
VIEWPORT = {"width": 1400, "height": 1500}

playwright_api = pytest.importorskip("playwright.sync_api")


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the searchable select box `label`, by typing as a listener would."""
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_function(
        "([label, option]) => document.querySelector(`input[aria-label='${label}']`)"
        ".value === option",
        arg=[label, option],
        timeout=WAIT_MS,
    )


def add(page, artist: str, song: str, count: int) -> None:
    choose(page, "Artist", artist)
    choose(page, "Song", song)
    page.get_by_role("button", name="Add to list").click()
    songs = "song" if count == 1 else "songs"
    page.get_by_text(f"Your list ({count} {songs})").wait_for(timeout=WAIT_MS)


def screenshot_folder() -> Path:
    folder = REPO / "docs" if os.environ.get(SCREENSHOTS_ENV) == "docs" else ARTIFACTS
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def rows(page, prefix: str = "rec") -> list[str]:
    """The first line ("N. Artist – Title") of each shown row."""
    texts = page.locator(f'[class*="st-key-{prefix}_row_"]').all_inner_texts()
    return [text.strip().splitlines()[0] for text in texts]


def wait_row(page, rank: int, prefix: str = "rec") -> None:
    page.locator(f".st-key-{prefix}_row_{rank}").wait_for(timeout=WAIT_MS)


def search_and_add(page, query: str, label: str, count: int) -> None:
    box = page.get_by_role("textbox", name="Find a song")
    box.fill(query)
    box.press("Enter")
    page.get_by_role("combobox", name="Matching songs").wait_for(timeout=WAIT_MS)
    choose(page, "Matching songs", label)
    page.get_by_role("button", name="Add to list").click()
    page.get_by_text(f"Your list ({count} songs)" if count > 1 else "Your list (1 song)").wait_for(
        timeout=WAIT_MS
    )
    box.fill("")
    box.press("Enter")
    page.get_by_role("combobox", name="Artist").wait_for(timeout=WAIT_MS)


def test_a_visitor_builds_a_list_acts_on_it_and_takes_it_away(browser, model, model_dir, tmp_path):
    shots = screenshot_folder()
    songs = model.songs
    first = songs.iloc[0]
    second = songs[songs["artist_name"] != first["artist_name"]].iloc[1]
    with serve(model_dir, tmp_path / "lists.sqlite3", tmp_path / "server.log") as (url, _):
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        page = context.new_page()
        page.goto(url)
        page.get_by_role("button", name="Add to list").wait_for(timeout=WAIT_MS)
        # Search by title words typed in upper case, then the artist picker.
        search_and_add(
            page,
            f"{first['track_name'].upper()} {first['artist_name'][:4]}",
            f"{first['artist_name']} – {first['track_name']}",
            1,
        )
        add(page, second["artist_name"], second["track_name"], 2)

        page.get_by_role("button", name="Recommend songs").click()
        wait_row(page, 10)
        shown = rows(page)
        assert [line.split(". ", 1)[0] for line in shown] == [str(i) for i in range(1, 11)]
        names = {line.split(". ", 1)[1] for line in shown}
        picked = {f"{r['artist_name']} – {r['track_name']}" for r in (first, second)}
        assert len(names) == 10 and not names & picked
        row = page.locator(".st-key-rec_row_1")
        links = row.get_by_role("link")
        assert links.count() >= 2
        assert all(links.nth(i).get_attribute("target") == "_blank" for i in range(links.count()))

        # Rate the third recommendation four stars (8): the list grows, the ten stay ten.
        third = shown[2].split(". ", 1)[1]
        page.locator(".st-key-rec_row_3 [data-testid=stFeedbackButton]").nth(3).click()
        page.get_by_text("Your list (3 songs)").wait_for(timeout=WAIT_MS)
        page.wait_for_function(
            "t => !document.body.innerText.includes(t + '**')", arg=third, timeout=WAIT_MS
        )
        wait_row(page, 10)
        assert third not in {line.split(". ", 1)[1] for line in rows(page)}
        page.screenshot(path=shots / "page-recommendations.png")

        page.get_by_role("button", name="Next ten").click()
        wait_row(page, 20)
        assert rows(page)[0].startswith("11. ")

        with page.expect_download() as download:
            page.get_by_role("button", name="Download JSPF").click()
        playlist = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        titles = {(t["creator"], t["title"]) for t in playlist["playlist"]["track"]}
        assert (first["artist_name"], first["track_name"]) in titles
        assert len(titles) == 3 + 10, "the list (3) and the ten shown"
        state = context.storage_state()
        context.close()

        assert any(c["name"] == "songrec_list" for c in state["cookies"])
        again = browser.new_context(storage_state=state, viewport=VIEWPORT)
        page = again.new_page()
        page.goto(url)
        page.get_by_text("Your list (3 songs)").wait_for(timeout=WAIT_MS)
        cells = page.locator('[data-testid="stDataFrame"] td')
        for row in (first, second):
            # Glide grid paints a canvas; its accessible twin table is in the DOM, hidden.
            cells.filter(has_text=row["track_name"]).first.wait_for(
                state="attached", timeout=WAIT_MS
            )
        page.screenshot(path=shots / "page-list-restored.png")
        again.close()

        stranger = browser.new_context()
        page = stranger.new_page()
        page.goto(url)
        page.get_by_text("Your list (0 songs)").wait_for(timeout=WAIT_MS)
        stranger.close()


# Makes document.cookie a no-op, as a browser that refuses this site's cookies would.
REFUSE_COOKIES = (
    "Object.defineProperty(Document.prototype, 'cookie', "
    "{configurable: true, get() { return ''; }, set(value) {}});"
)


def test_the_page_works_when_the_browser_refuses_cookies(browser, model, model_dir, tmp_path):
    row = model.songs.iloc[3]
    with serve(model_dir, tmp_path / "lists.sqlite3", tmp_path / "server.log") as (url, _):
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(REFUSE_COOKIES)
        page = context.new_page()
        page.goto(url)
        page.get_by_role("button", name="Add to list").wait_for(timeout=WAIT_MS)
        add(page, row["artist_name"], row["track_name"], 1)
        page.get_by_role("button", name="Recommend songs").click()
        wait_row(page, 10)
        assert not any(c["name"] == "songrec_list" for c in context.cookies())
        page.reload()
        page.get_by_text("Your list (0 songs)").wait_for(timeout=WAIT_MS)
        assert page.locator('[data-testid="stException"]').count() == 0
        context.close()


def test_a_visitor_imports_their_listenbrainz_export(browser, model, model_dir, tmp_path):
    export = tmp_path / "listenbrainz_someone.zip"
    export.write_bytes(export_zip(export_lines(model, {0: 6, 3: 2, 8: 1})))
    with serve(model_dir, tmp_path / "lists.sqlite3", tmp_path / "server.log") as (url, _):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url)
        page.get_by_test_id("stExpander").get_by_text("Import your listening history").click()
        page.locator('input[type="file"]').set_input_files(str(export))
        page.get_by_text("Added 3 songs to your list").wait_for(timeout=WAIT_MS)
        page.get_by_text("Your list (3 songs)").wait_for(timeout=WAIT_MS)
        page.get_by_role("button", name="Recommend songs").click()
        wait_row(page, 10)
        page.screenshot(path=screenshot_folder() / "page-history-imported.png")
        assert page.locator('[data-testid="stException"]').count() == 0
        context.close()
