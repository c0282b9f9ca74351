"""The report's hardware plot: energy error against two-qubit gates after routing to the hardware stage's device.

Drawn only for goals scored with the hardware stage (``workers/evaluation/hardware.py``). Each candidate appears
twice at its routed two-qubit-gate count: its noiseless VQE error (open circle) and its error under the device's
noise model at the same parameters (filled, with a one-standard-error bar from shot noise). The red step is the
Pareto front of the noisy error: what a researcher would run on the device.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from .report_points import ERROR_FLOOR, ReportPoint, new_plot, pareto_front, save_plot


def _routed(p: ReportPoint) -> int | None:
    return p.routed_two_qubit_gates


def _noisy(p: ReportPoint) -> float | None:
    return p.noisy_error


def plot_hardware_pareto(goal: str, points: Sequence[ReportPoint], path: pathlib.Path) -> None:
    fig, ax = new_plot()
    routed = [p for p in points if p.routed_two_qubit_gates is not None]
    clean = [p for p in routed if p.error is not None]
    if clean:
        ax.scatter([p.routed_two_qubit_gates for p in clean], [max(p.error, ERROR_FLOOR) for p in clean], s=18,
                   facecolors="none", edgecolors="tab:blue", alpha=0.6, label="noiseless VQE error")
    noisy = [p for p in routed if p.noisy_error is not None]
    if noisy:
        ax.errorbar([p.routed_two_qubit_gates for p in noisy], [max(p.noisy_error, ERROR_FLOOR) for p in noisy],
                    yerr=[p.noisy_stderr or 0.0 for p in noisy], fmt="o", ms=4, color="tab:orange", alpha=0.8,
                    label="noisy error (± 1 s.e., shots)")
    front = pareto_front(noisy, cost=_routed, error=_noisy)
    if front:
        ax.step([p.routed_two_qubit_gates for p in front], [max(p.noisy_error, ERROR_FLOOR) for p in front],
                where="post", color="tab:red", label="Pareto front (noisy)")
    save_plot(fig, ax, path, xlabel="two-qubit gates after routing to the device", ylabel="energy error",
              title=f"{goal}: error against routed two-qubit gates", legend=bool(routed))
