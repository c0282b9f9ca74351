"""Rich progress bars for the discovery loop: iterations, and candidates through the current stage."""

from __future__ import annotations

import collections

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class LoopProgress:
    """Two bars (iterations; the current stage with a count per verdict). Disabled: every call is a no-op."""

    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress = None
        self._iter_task = None
        self._stage_task = None
        self._counts: collections.Counter = collections.Counter()
        self._label = ""
        self._total = 0
        if enabled:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), console=console or Console(stderr=True),
                                      transient=False)

    def run_started(self, run_id: int, iterations: int) -> None:
        if not self.enabled:
            return
        self._progress.start()
        self._iter_task = self._progress.add_task(f"run {run_id}: iterations", total=iterations)

    def iterations_done(self, done: int, best: dict | None = None) -> None:
        if not self.enabled:
            return
        text = ""
        if best:
            text = "  best error " + ", ".join(f"{g} {e:.2e}" if e is not None else f"{g} -" for g, e in best.items())
        self._progress.update(self._iter_task, completed=done,
                              description=f"{self._progress.tasks[0].description.split('  ')[0]}{text}")

    def _describe(self) -> str:
        verdicts = " · ".join(f"{k} {v}" for k, v in sorted(self._counts.items()))
        return f"  {self._label}" + (f" ({verdicts})" if verdicts else "")

    def start_stage(self, label: str, total: int) -> None:
        self._counts = collections.Counter()
        self._label, self._total = label, total
        if not self.enabled:
            return
        if self._stage_task is not None:
            self._progress.remove_task(self._stage_task)
        self._stage_task = self._progress.add_task(self._describe(), total=total)

    def advance_stage(self, verdict: str) -> None:
        self._counts[verdict] += 1
        if self.enabled:
            self._progress.update(self._stage_task, advance=1, description=self._describe())

    def update_stage(self, statuses: dict) -> None:
        """From a {candidate id: status} picture (distributed mode): count the final ones."""
        self._counts = collections.Counter(s for s in statuses.values() if s not in ("queued", "pending"))
        if self.enabled:
            self._progress.update(self._stage_task, completed=sum(self._counts.values()), description=self._describe())

    def stop(self) -> None:
        if self.enabled and self._progress is not None:
            self._progress.stop()
