"""App benchmark: the real page server and a real browser, on the 10k-song 150-factor model.

Measures server cold start (to health, to first render in Chromium), click-to-results in
the browser for instant and exact-retrain recommendations, the model part of each call,
server memory with the model loaded, 10 visitors recommending at once (browser contexts),
and an instant recommendation while another visitor's exact retrain runs. Lists are
seeded through the page's own persistence (SQLite row + the browser's cookie). Prints
numbers, asserts nothing.

    python tests/bench/bench_app.py [--model DIR] [--work DIR]

Without --model it builds (once, kept in --work, default .songrec/bench-app) a model like
the reference's: the ETL's synthetic sample at 2,458 users x 10,000 songs, SVD 150 factors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "app")]

from page_server import CHROMIUM, CHROMIUM_ARGS, serve  # noqa: E402

from songrec.app.listening_list import from_pairs  # noqa: E402
from songrec.app.saved_list import ListStore, new_token  # noqa: E402
from songrec.models.artifact import TrainedModel, load_model, save_model  # noqa: E402
from songrec.models.recommender import Recommender  # noqa: E402

SVD_150 = {"n_factors": 150, "reg_all": 0.1, "lr_all": 0.005, "n_epochs": 20}
RATED = 20
VISITORS = 10
SEED = 7


def build_model(work: Path) -> Path:
    """The reference-sized model (reused when `work/model-150` exists)."""
    from songrec.etl.pipeline import EtlRun, run_listens
    from songrec.etl.sample import SampleSpec, sample_listens
    from songrec.models.data import load_ratings, ratings_fingerprint, trim_top_songs
    from songrec.models.ranking.train import train_ranking
    from songrec.models.train import fit_final

    out = work / "model-150"
    if (out / "manifest.json").exists():
        return out
    data = work / "data"
    spec = SampleSpec(users=2_458, songs=10_000, listens=5_600_000)
    run_listens(EtlRun(source="bench sample", out_dir=data, force=True), sample_listens(spec))
    kept, songs, _ = trim_top_songs(*load_ratings(data), 10_000)
    factors, bias, mean = fit_final(kept, songs, SVD_150, SEED)
    ranking = train_ranking(kept, songs, data, None, SEED)
    model = TrainedModel(
        songs["song_id"].to_numpy(dtype=object),
        factors,
        bias,
        mean,
        {**SVD_150, "seed": SEED, "ranking": ranking.report},
        songs,
        ranking=ranking.model,
    )
    return save_model(model, out, ratings=kept, fingerprint=ratings_fingerprint(kept))


def listener(model: TrainedModel, rng: np.random.Generator) -> list[tuple[str, int]]:
    """A visitor's list: RATED songs drawn from the 2,000 most played, random ratings."""
    rows = rng.choice(min(2_000, model.n_songs), RATED, replace=False)
    return [(str(model.song_ids[i]), int(rng.integers(1, 11))) for i in rows]


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def streamlit_pid(cli_pid: int) -> int:
    """The streamlit child that `songrec app` started."""
    children = Path(f"/proc/{cli_pid}/task/{cli_pid}/children").read_text().split()
    return int(children[0]) if children else cli_pid


def stats(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms, worst {max(values):.0f} ms"


async def open_with_list(browser, url: str, token: str, songs: int):
    """A browser context whose cookie names a seeded list; the page, list shown."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1500})
    await context.add_cookies([{"name": "songrec_list", "value": token, "url": url}])
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_text(f"Your list ({songs} songs)").wait_for(timeout=120_000)
    return context, page


async def click_to_results(page, mode: str = "Instant (fold-in)") -> float:
    """ms from clicking Recommend songs to the tenth recommendation row."""
    await page.get_by_text(mode).click()
    started = time.perf_counter()
    await page.get_by_role("button", name="Recommend songs").click()
    await last_row_ready(page, 10)
    return 1000 * (time.perf_counter() - started)


async def last_row_ready(page, rank: int) -> None:
    """Row `rank` drawn with its widgets (stars load lazily: wait for them too)."""
    row = page.locator(f".st-key-rec_row_{rank}")
    await row.locator("[data-testid=stFeedbackButton]").first.wait_for()
    await row.get_by_role("button", name="More like this").wait_for()


async def acting(page, model: TrainedModel, rng: np.random.Generator, rounds: int = 6) -> None:
    """ms from each action to its result: search, add a recommended song, next ten."""
    search, add, refresh = [], [], []
    box = page.get_by_role("textbox", name="Find a song")
    await click_to_results(page)
    listed, shown_page = RATED, 0
    for _ in range(rounds):
        row = model.songs.iloc[int(rng.integers(0, model.n_songs))]
        await box.fill("")
        await box.press("Enter")
        await page.get_by_role("combobox", name="Artist").wait_for()
        started = time.perf_counter()
        await box.fill(f"{row['artist_name']} {row['track_name']}")
        await box.press("Enter")
        await page.get_by_role("combobox", name="Matching songs").wait_for()
        search.append(1000 * (time.perf_counter() - started))

        third = page.locator(
            f".st-key-rec_row_{10 * shown_page + 3} [data-testid=stFeedbackButton]"
        )
        started = time.perf_counter()
        await third.nth(3).click()
        listed += 1
        await page.get_by_text(f"Your list ({listed} songs)").wait_for()
        await last_row_ready(page, 10 * shown_page + 10)
        add.append(1000 * (time.perf_counter() - started))

        started = time.perf_counter()
        await page.get_by_role("button", name="Next ten").click()
        shown_page += 1
        await last_row_ready(page, 10 * shown_page + 10)
        refresh.append(1000 * (time.perf_counter() - started))
    print(f"browser search (Enter to matches): {stats(search)}")
    print(f"browser add a recommended song (choice to list and ten updated): {stats(add)}")
    print(f"browser next ten (click to rows): {stats(refresh)}")


async def browser_part(
    url: str, tokens: list[str], cli_pid: int, started: float, model: TrainedModel
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        page = await context.new_page()
        navigated = time.perf_counter()
        await page.goto(url)
        await page.get_by_role("button", name="Add to list").wait_for(timeout=120_000)
        done = time.perf_counter()
        print(
            f"cold start to first render (model loaded): {done - started:.1f} s "
            f"(of which page load {done - navigated:.1f} s)"
        )
        await context.close()
        pid = streamlit_pid(cli_pid)
        print(f"server memory with the model loaded: {rss_mb(pid)[0]:.0f} MB RSS")

        instant = []
        for token in tokens[:6]:
            context, page = await open_with_list(browser, url, token, RATED)
            instant.append(await click_to_results(page))
            await context.close()
        print(f"browser click-to-results, instant: {stats(instant[1:])} (first {instant[0]:.0f})")

        context, page = await open_with_list(browser, url, tokens[-1], RATED)
        await acting(page, model, np.random.default_rng(SEED))
        await context.close()

        context, page = await open_with_list(browser, url, tokens[0], RATED)
        retrain = await click_to_results(page, "Exact retrain")
        await context.close()
        print(f"browser click-to-results, exact retrain: {retrain / 1000:.1f} s")
        now, peak = rss_mb(pid)
        print(f"server memory after a retrain: {now:.0f} MB RSS, peak {peak:.0f} MB")

        pages = [await open_with_list(browser, url, t, RATED) for t in tokens[:VISITORS]]
        crowd = await asyncio.gather(*(click_to_results(p) for _, p in pages))
        print(f"{VISITORS} visitors clicking at once (instant): {stats(list(crowd))}")
        for context, _ in pages:
            await context.close()

        (c1, slow), (c2, fast) = [await open_with_list(browser, url, t, RATED) for t in tokens[:2]]
        retraining = asyncio.ensure_future(click_to_results(slow, "Exact retrain"))
        await asyncio.sleep(0.3)  # the retrain (about a second) is under way
        during = [await click_to_results(fast) for _ in range(3)]
        await retraining
        print(f"instant for one visitor while another retrains: {stats(during)}")
        await browser.close()


def model_part(model: TrainedModel, lists: list[list[tuple[str, int]]]) -> None:
    from threadpoolctl import threadpool_limits

    times = []
    # The page runs BLAS on one thread per call (app/page/session.py); measure the same.
    threadpool_limits(limits=1, user_api="blas")
    recommender = Recommender(model)
    recommender.recommend(lists[0], 10)  # the first call reads the ratings for the reasons
    for rated in lists * 5:
        started = time.perf_counter()
        recommender.recommend(rated, 10)
        times.append(1000 * (time.perf_counter() - started))
    print(
        f"model part, instant (Recommender.recommend, {RATED} ratings): median "
        f"{statistics.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms"
    )
    started = time.perf_counter()
    recommender.recommend(lists[0], 10, mode="retrain")
    print(f"model part, exact retrain: {time.perf_counter() - started:.1f} s")


def server_crowd(model_dir: Path, store_path: Path, tokens: list[str]) -> None:
    """VISITORS AppTest sessions in threads clicking at once: the server's share of the wait."""
    import threading

    from streamlit.testing.v1 import AppTest

    os.environ.update(SONGREC_MODEL=str(model_dir), SONGREC_LISTS=str(store_path))
    pages = []
    for token in tokens[:VISITORS]:
        at = AppTest.from_file(str(REPO / "app" / "streamlit_app.py"), default_timeout=120)
        at.session_state["songrec_token"] = token
        pages.append(at.run())
    barrier = threading.Barrier(len(pages))
    times: list[float] = []

    def visit(at) -> None:
        button = next(b for b in at.button if b.label == "Recommend songs")
        barrier.wait()
        started = time.perf_counter()
        button.click().run()
        times.append(1000 * (time.perf_counter() - started))
        assert sum((f.key or "").startswith("rec_rate_") for f in at.feedback) == 10

    threads = [threading.Thread(target=visit, args=(at,)) for at in pages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"{VISITORS} visitors at once, server side (AppTest threads): {stats(times)}")


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="Model folder (default: build one).")
    parser.add_argument("--work", type=Path, default=REPO / ".songrec" / "bench-app")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    # Every number below depends on what else the machine is doing.
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    model_dir = args.model or build_model(args.work)
    started = time.perf_counter()
    model = load_model(model_dir)
    print(
        f"model {model_dir}: {model.n_songs:,} songs x {model.n_factors} factors; "
        f"load with checksums {time.perf_counter() - started:.2f} s"
    )
    rng = np.random.default_rng(SEED)
    # One list more than visitors: the acting part grows its list, the others stay at RATED.
    lists = [listener(model, rng) for _ in range(VISITORS + 1)]
    model_part(model, lists)

    store_path = args.work / "lists.sqlite3"
    store = ListStore(store_path)
    tokens = [new_token() for _ in lists]
    for token, rated in zip(tokens, lists, strict=True):
        store.save(token, from_pairs(rated))
    server_crowd(model_dir, store_path, tokens)
    started = time.perf_counter()
    with serve(model_dir, store_path, args.work / "server.log") as (url, process):
        print(f"server cold start to health check: {time.perf_counter() - started:.1f} s")
        asyncio.run(browser_part(url, tokens, process.pid, started, model))
    search_at_scale()


def search_at_scale(songs: int = 1_000_000, queries: int = 200) -> None:
    """The song search over a million made-up names: index build, then p50/p95 per query."""
    from songrec.models.search import SongIndex

    rng = np.random.default_rng(SEED)
    syllables = np.array(["ka", "lo", "mi", "ne", "ra", "to", "su", "vi", "dé", "ré", "ßa"])

    def names(count: int, words: int) -> list[str]:
        picks = syllables[rng.integers(0, len(syllables), (count, words * 3))]
        return [
            " ".join("".join(row[i : i + 3]).capitalize() for i in range(0, words * 3, 3))
            for row in picks
        ]

    artists, tracks = names(songs, 2), names(songs, 3)
    plays = rng.pareto(1.2, songs)
    started = time.perf_counter()
    index = SongIndex(artists, tracks, plays)
    built = time.perf_counter() - started
    times = []
    for i in rng.integers(0, songs, queries):
        words = f"{artists[i]} {tracks[i]}".split()
        query = " ".join(rng.choice(words, min(2, len(words)), replace=False)).upper()
        started = time.perf_counter()
        found = index.search(query, 25)
        times.append(1000 * (time.perf_counter() - started))
        assert found
    print(
        f"search at {songs:,} songs (in-process): index built in {built:.1f} s; per query "
        f"median {statistics.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms"
    )


if __name__ == "__main__":
    main()
