"""The real page in a real browser: `songrec app` + Debian's Chromium driven by Playwright.

Adds two songs, recommends (ten rows), closes the browser context, opens a new one with
the same stored state (cookies) and finds the list again. Screenshots land in
tests/artifacts/ (gitignored) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from page_server import CHROMIUM, CHROMIUM_ARGS, serve

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
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


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run)")
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_list_survives_closing_the_browser(browser, model, model_dir, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    songs = model.songs
    picks = [songs.iloc[0], songs[songs["artist_name"] != songs.iloc[0]["artist_name"]].iloc[1]]
    with serve(model_dir, tmp_path / "lists.sqlite3", tmp_path / "server.log") as (url, _):
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url)
        page.get_by_role("button", name="Add to list").wait_for(timeout=WAIT_MS)
        for count, row in enumerate(picks, start=1):
            add(page, row["artist_name"], row["track_name"], count)
        page.get_by_role("button", name="Recommend songs").click()
        table = page.locator('[data-testid="stTable"] table')
        table.locator("tbody tr").nth(9).wait_for(timeout=WAIT_MS)
        rows = [row.locator("td, th").all_inner_texts() for row in table.locator("tbody tr").all()]
        assert len(rows) == 10
        # Columns: rank, artist, song, predicted rating, why.
        shown = {(cells[1].strip(), cells[2].strip()) for cells in rows}
        assert len(shown) == 10
        assert not shown & {(row["artist_name"], row["track_name"]) for row in picks}
        assert all(cells[4].startswith("because you rated") for cells in rows)
        page.screenshot(path=ARTIFACTS / "app_recommendations.png")
        state = context.storage_state()
        context.close()

        assert any(c["name"] == "songrec_list" for c in state["cookies"])
        again = browser.new_context(storage_state=state, viewport=VIEWPORT)
        page = again.new_page()
        page.goto(url)
        page.get_by_text("Your list (2 songs)").wait_for(timeout=WAIT_MS)
        cells = page.locator('[data-testid="stDataFrame"] td')
        for row in picks:
            # Glide grid paints a canvas; its accessible twin table is in the DOM, hidden.
            cells.filter(has_text=row["track_name"]).first.wait_for(
                state="attached", timeout=WAIT_MS
            )
        assert {row["artist_name"] for row in picks} <= set(cells.all_inner_texts())
        page.screenshot(path=ARTIFACTS / "app_list_restored.png")
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
        page.locator('[data-testid="stTable"] tbody tr').nth(9).wait_for(timeout=WAIT_MS)
        assert not any(c["name"] == "songrec_list" for c in context.cookies())
        page.reload()
        page.get_by_text("Your list (0 songs)").wait_for(timeout=WAIT_MS)
        assert page.locator('[data-testid="stException"]').count() == 0
        context.close()
