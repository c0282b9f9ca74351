"""L-BFGS-B restarts advanced in rounds, in one thread, through SciPy's own reverse-communication routine.

``scipy.optimize.minimize(method="L-BFGS-B")`` is a Python loop around ``_lbfgsb.setulb``: the routine returns
whenever it needs the energy and gradient at a new point. ``Restart`` runs the same loop one request at a time
(``ask`` / ``tell``), so several restarts can hand their points to one batched engine call without threads, locks
or thread switches. Same algorithm, same defaults (``maxcor`` 10, ``maxls`` 20), same stopping rules, so the same
points are visited as by ``minimize`` (tests/test_vqe.py checks it).

``setulb``'s calling convention is SciPy's private one since 1.15 (the C translation); ``available()`` says whether
this SciPy has it, and ``vqe.py`` falls back to ``minimize`` in lockstep threads (``simulation/lockstep.py``) when
it does not.
"""

from __future__ import annotations

import numpy as np

try:
    import scipy
    from scipy.optimize import _lbfgsb
except ImportError:  # pragma: no cover
    _lbfgsb = None

_FG, _NEW_X, _STOP = 3, 1, 5
_STOP_MAXFUN, _STOP_MAXITER = 502, 504


def available() -> bool:
    """Whether SciPy's ``setulb`` has the calling convention used here (SciPy >= 1.15)."""
    if _lbfgsb is None or not hasattr(_lbfgsb, "setulb"):
        return False
    major, minor = (int(part) for part in scipy.__version__.split(".")[:2])
    return (major, minor) >= (1, 15)


class Restart:
    """One L-BFGS-B run without bounds: ``ask()`` the next point (None when finished), ``tell(f, g)`` its values."""

    def __init__(self, x0: np.ndarray, *, ftol: float, gtol: float, maxiter: int, maxfun: int, maxcor: int = 10,
                 maxls: int = 20):
        n = len(x0)
        self.m, self.maxls, self.maxiter, self.maxfun = maxcor, maxls, maxiter, maxfun
        self.factr, self.pgtol = ftol / np.finfo(float).eps, gtol
        self.x = np.array(x0, dtype=np.float64)
        self.f, self.g = np.array(0.0), np.zeros(n)
        self.bounds = (np.zeros(n), np.zeros(n), np.zeros(n, np.int32))
        self.wa = np.zeros(2 * maxcor * n + 5 * n + 11 * maxcor * maxcor + 8 * maxcor)
        self.iwa = np.zeros(3 * n, np.int32)
        self.task, self.ln_task = np.zeros(2, np.int32), np.zeros(2, np.int32)
        self.lsave, self.isave, self.dsave = np.zeros(4, np.int32), np.zeros(44, np.int32), np.zeros(29)
        self.nit = self.nfev = 0
        self._last: np.ndarray | None = None

    def ask(self) -> np.ndarray | None:
        """Advance to the next request for f and g: the point (a copy), or None when the run has stopped."""
        low, up, nbd = self.bounds
        while True:
            _lbfgsb.setulb(self.m, self.x, low, up, nbd, self.f, self.g, self.factr, self.pgtol, self.wa, self.iwa,
                           self.task, self.lsave, self.isave, self.dsave, self.maxls, self.ln_task)
            if self.task[0] == _FG:
                if self._last is not None and np.array_equal(self.x, self._last):
                    continue  # SciPy's ScalarFunction answers a repeated point from its cache
                return self.x.copy()
            if self.task[0] != _NEW_X:
                return None
            self.nit += 1
            if self.nit >= self.maxiter:
                self.task[:] = _STOP, _STOP_MAXITER
            elif self.nfev > self.maxfun:
                self.task[:] = _STOP, _STOP_MAXFUN

    def tell(self, energy: float, gradient: np.ndarray) -> None:
        self.f = float(energy)
        self.g = np.array(gradient, dtype=np.float64)
        self._last = self.x.copy()
        self.nfev += 1
