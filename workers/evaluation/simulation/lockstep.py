"""Run several independent optimiser restarts in lockstep so each round of energy/gradient requests is one batch.

Every restart runs SciPy's ``minimize`` unchanged in its own thread. Its objective hands its parameter vector to a
shared ``Lockstep``; when *every* unfinished restart has handed one in, the last to arrive evaluates them all in one
batched engine call and wakes the others. A round therefore always contains exactly the restarts still running,
whatever the thread timing, so results are deterministic. The batch costs little more than a single row when Python
overhead dominates (few qubits, the usual VQE case), so k restarts cost about as much as one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class Lockstep:
    """Batches one request per running restart into a single call of ``evaluate(rows) -> (energies, grads)``."""

    def __init__(self, evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], restarts: int):
        self._evaluate = evaluate
        self._active = restarts
        self._pending: dict[int, np.ndarray] = {}
        self._results: dict[int, tuple[float, np.ndarray]] = {}
        self._error: BaseException | None = None
        self._cv = threading.Condition()
        self.batches = 0

    def request(self, restart: int, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy and gradient at ``theta`` for ``restart``; blocks until its round has been evaluated."""
        with self._cv:
            if self._error is not None:
                raise self._error
            self._pending[restart] = np.array(theta, dtype=float)
            if len(self._pending) >= self._active:
                self._run()
            while restart not in self._results and self._error is None:
                self._cv.wait()
            if self._error is not None:
                raise self._error
            return self._results.pop(restart)

    def finish(self) -> None:
        """A restart is done (converged, out of time or failed): later rounds no longer wait for it."""
        with self._cv:
            self._active -= 1
            if self._pending and len(self._pending) >= self._active:
                self._run()

    def abort(self, exc: BaseException) -> None:
        """Fail every current and later request with ``exc`` (one restart failed: stop the others)."""
        with self._cv:
            if self._error is None:
                self._error = exc
            self._cv.notify_all()

    def _run(self) -> None:
        order = sorted(self._pending)
        rows = np.stack([self._pending[r] for r in order])
        self._pending.clear()
        self.batches += 1
        try:
            energies, grads = self._evaluate(rows)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting restart, re-raised there
            self._error = exc
        else:
            for i, r in enumerate(order):
                self._results[r] = (float(energies[i]), np.array(grads[i]))
        self._cv.notify_all()


def run_restarts(restarts: int, work: Callable[[int, Lockstep], None],
                 evaluate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> int:
    """Run ``work(r, lockstep)`` for r in range(restarts), each in a thread; re-raise the first error.

    Returns the number of batched evaluation rounds.
    """
    lockstep = Lockstep(evaluate, restarts)
    errors: list[Exception] = []

    def target(r: int) -> None:
        try:
            work(r, lockstep)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller thread; the others stop at once
            errors.append(exc)
            lockstep.abort(exc)
        finally:
            lockstep.finish()

    threads = [threading.Thread(target=target, args=(r,), name=f"vqe-restart-{r}", daemon=True)
               for r in range(restarts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return lockstep.batches
