"""What `invoke bench` shows while it works: a rich progress bar on a terminal, plain lines with
counts otherwise (a CI log, a pipe), so a long step (data generation, a timed run) never runs
without a word.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator

# Plain mode prints a line at most this often (and at the end), so a log stays readable.
PLAIN_EVERY_SECONDS = 5.0


def interactive() -> bool:
    return sys.stdout.isatty()


class Step:
    """One step with a known total (rows, seconds, requests): advance it as work completes."""

    def __init__(self, label: str, total: float, unit: str, plain: bool):
        self.label, self.total, self.unit, self.plain = label, total, unit, plain
        self.done = 0.0
        self.started = time.monotonic()
        self._last_line = 0.0
        self._bar = None
        self._task = None

    def advance(self, amount: float = 1) -> None:
        self.update(self.done + amount)

    def update(self, done: float) -> None:
        self.done = min(done, self.total) if self.total else done
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif self.plain and time.monotonic() - self._last_line >= PLAIN_EVERY_SECONDS:
            self._line()

    def _line(self) -> None:
        if self.done == getattr(self, "_last_done", None):
            return  # the same count again (the end of a step that just printed its total)
        self._last_done = self.done
        self._last_line = time.monotonic()
        print(f"    {self.label}: {plain_count(self.done, self.unit)} of {plain_count(self.total, self.unit)}"
              f" ({percent(self.done, self.total)}), {time.monotonic() - self.started:.0f} s", flush=True)


def plain_count(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if unit != "s" else f"{value:.0f} s"


def percent(done: float, total: float) -> str:
    return f"{100 * done / total:.0f}%" if total else "?"


@contextmanager
def step(label: str, total: float, unit: str = "") -> Iterator[Step]:
    """A progress bar (terminal) or start/progress/end lines (otherwise) for one step."""
    s = Step(label, total, unit, plain=not interactive())
    if not s.plain:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [TextColumn("    {task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                   TimeElapsedColumn()]
        with Progress(*columns, transient=True) as bar:
            s._bar, s._task = bar, bar.add_task(label, total=total)
            yield s
        return
    print(f"    {label}: 0 of {plain_count(total, unit)}" if unit != "s" else f"    {label}: running for {total:.0f} s",
          flush=True)
    s._last_line = time.monotonic()
    yield s
    if unit != "s":  # a timed run's result line follows at once
        s._line()
