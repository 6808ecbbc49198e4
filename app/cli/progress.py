"""Progress bars: tqdm on a terminal, plain distinct lines in a log.

tqdm redraws its bar with carriage returns. In a log (`make demo > log`, CI) every redraw
is kept, and the final state appears twice (the last update, then close's, at another
rate). Off a terminal a bar here prints nothing while it runs, except a line every
`LOG_EVERY_S` seconds for a long stage, and one line when it closes (skipped when it would
repeat the last one). A bar closed by an error prints nothing more, so the error stays the
one line a failed command writes.
"""

from __future__ import annotations

import sys
import time
from typing import IO

from tqdm import tqdm

# Seconds between the progress lines a long stage writes to a log.
LOG_EVERY_S = 30.0


def _failing() -> bool:
    """Whether an exception is on its way out (close() called from a `finally`/`__exit__`)."""
    return sys.exc_info()[0] is not None


class TerminalBar(tqdm):
    """tqdm, except a bar closed by an error is wiped, so the error line stands alone."""

    def close(self) -> None:
        if _failing():
            self.leave = False
        super().close()


class LogBar:
    """The part of tqdm's interface the CLI uses, writing whole lines (see the module doc)."""

    def __init__(
        self,
        total: float | None = None,
        desc: str = "",
        unit: str = "it",
        unit_scale: bool = False,
        disable: bool = False,
        file: IO[str] | None = None,
        every_s: float = LOG_EVERY_S,
    ) -> None:
        self.total = total
        self.n = 0
        self.desc = desc
        self.unit = unit
        self.unit_scale = unit_scale
        self.disable = disable
        self.file = file
        self.every_s = every_s
        self.postfix = ""
        self.started = self.last_time = self.updated = time.monotonic()
        self.last_line: tuple[float, float | None, str] | None = None
        self.closed = False

    def __enter__(self) -> LogBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        """Add `n` to the count; a line now and then while a long stage runs."""
        self.n += n
        now = self.updated = time.monotonic()
        unfinished = self.total is None or self.n < self.total
        moved = (self.n, self.total, self.postfix) != self.last_line
        if unfinished and moved and now - self.last_time >= self.every_s:
            self._write()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text shown after the counts (a log line shows the latest)."""
        self.postfix = str(s)

    def refresh(self) -> None:
        """Nothing to redraw in a log."""

    def close(self) -> None:
        """The final line, once; none after an error or when it would repeat the last."""
        if self.closed:
            return
        self.closed = True
        state = (self.n, self.total, self.postfix)
        if not _failing() and state != self.last_line:
            # Timed at the last update: the rate of the work, not of what ran until close.
            self._write(self.updated)

    def _write(self, at: float | None = None) -> None:
        if self.disable:
            return
        self.last_time = time.monotonic()
        self.last_line = (self.n, self.total, self.postfix)
        line = tqdm.format_meter(
            self.n,
            self.total,
            (at or self.last_time) - self.started,
            ncols=0,  # no bar: the counts, times and rate only
            prefix=self.desc,
            unit=self.unit,
            unit_scale=self.unit_scale,
            postfix=self.postfix or None,
        )
        print(line, file=self.file or sys.stderr, flush=True)


# What progress_bar returns.
Bar = TerminalBar | LogBar


def progress_bar(
    desc: str,
    total: float | None = None,
    unit: str = "it",
    unit_scale: bool = False,
    disable: bool = False,
) -> Bar:
    """A bar on stderr: tqdm's when stderr is a terminal, log lines otherwise.

    Give `total` only when it is known: without one the bar counts and shows a rate.
    """
    isatty = getattr(sys.stderr, "isatty", None)
    if isatty is not None and isatty():
        return TerminalBar(
            total=total, desc=desc, unit=unit, unit_scale=unit_scale, disable=disable
        )
    return LogBar(total=total, desc=desc, unit=unit, unit_scale=unit_scale, disable=disable)


class StepBar:
    """A bar over a run's steps after its reading (EtlRun.on_step), opened at the first
    step below the reading's bar (`before`), which stays open until both close: a run
    that fails in a later step then prints only its error, and a log gets the reading's
    line before the steps'."""

    def __init__(self, desc: str, before: Bar | None = None) -> None:
        self.desc = desc
        self.before = before
        self.bar: Bar | None = None

    def __call__(self, done: int, total: int, name: str) -> None:
        if self.bar is None:
            self.bar = progress_bar(self.desc, total=total, unit="step")
        self.bar.set_postfix_str(name, refresh=False)
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> StepBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.before is not None:
            self.before.close()
        if self.bar is not None:
            self.bar.close()
