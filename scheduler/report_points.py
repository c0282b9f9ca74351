"""What every report plot shares: the point a plot draws (``ReportPoint``), the Pareto front, and the one frame
every plot is drawn in and finished with (``new_plot``, ``save_plot``). Used by ``report.py`` and
``report_hardware.py``."""

from __future__ import annotations

import dataclasses
import math
import pathlib
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

ERROR_FLOOR = 1e-12
"""Errors below this are drawn at it (exact to numerical precision)."""


@dataclasses.dataclass(frozen=True)
class ReportPoint:
    """One scored candidate or baseline as the report draws it."""

    label: str
    iteration: int
    error: float | None
    two_qubit_gates: int
    depth: int
    num_parameters: int
    status: str
    code: str = ""
    bp_sizes: tuple[int, ...] = ()
    bp_variances: tuple[float, ...] = ()
    decay_rate: float | None = None
    has_barren_plateau: bool | None = None
    baseline: bool = False
    routed_two_qubit_gates: int | None = None
    """Two-qubit gates after routing to the hardware stage's device (None: no hardware stage)."""
    noisy_error: float | None = None
    """Noisy energy - exact energy under the device's noise model (None: not measured)."""
    noisy_stderr: float | None = None
    mean_error: float | None = None
    """Goal sets: the mean member error (``error`` is the worst member's)."""
    extrapolation_error: float | None = None
    """Lattice goal sets: the error at the held-out size larger than every member."""


def _two_qubit_gates(p: ReportPoint) -> float:
    return p.two_qubit_gates


def _error(p: ReportPoint) -> float | None:
    return p.error


def pareto_front(points: Sequence[ReportPoint], *, cost=_two_qubit_gates, error=_error) -> list[ReportPoint]:
    """Points not beaten on both ``error`` and ``cost`` (default: error and two-qubit-gate count), by increasing
    cost; points whose error or cost is None are left out."""
    scored = sorted((p for p in points if error(p) is not None and cost(p) is not None),
                    key=lambda p: (cost(p), error(p)))
    front, best = [], math.inf
    for p in scored:
        if error(p) < best:
            front.append(p)
            best = error(p)
    return front


def _legend_outside(ax) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)


def new_plot():
    """A figure and axes of the report's size."""
    return plt.subplots(figsize=(6.4, 4.0), dpi=110)


def save_plot(fig, ax, path: pathlib.Path, *, xlabel: str, ylabel: str, title: str, legend: bool = True,
              integer_x: bool = False) -> None:
    """Finish a report plot the one way every plot is finished (log error axis, labels, grid, legend outside
    when there is anything to label), write it to ``path`` and free it."""
    ax.set_yscale("log")
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if legend:
        _legend_outside(ax)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
